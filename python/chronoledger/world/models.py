"""The language models that give the agents of a world their words.

The scheduler gathers every model request of one simulation tick into a list
and calls :meth:`LanguageModel.complete` once, so a model that talks to a
server can send the requests concurrently, and the offline model can render a
whole tick in one tight loop.  Three models are built in:

* :class:`OfflineModel` (``"offline"``): templates, no network, no cost.  Its
  only randomness is each request's ``seed``, so a dry run gives the same
  conversations on every machine and every run, which is what makes a world
  replayable and its benchmarks comparable.
* :class:`OpenAICompatibleModel` (``"openai"``): any server that speaks the
  OpenAI ``/chat/completions`` protocol (OpenAI, vLLM, llama.cpp, LM Studio...).
* :class:`OllamaModel` (``"ollama"``): a local Ollama server's ``/api/chat``.

:func:`make_model` turns a name from a command line or a config file into one
of them.  Every failure is a :class:`ModelError` whose message says which URL
failed, why, and after how many attempts.

The same models turn texts into vectors (:meth:`LanguageModel.embed`), so
that an agent's memories can be ranked by relevance through whichever backend
the run is configured with: the HTTP models through the server's embedding
endpoint when given an ``embedding_model``, the offline model through a
hashed bag of words that needs no network and replays byte for byte.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import numpy as np

from chronoledger.errors import ModelError   # defined with every public exception; re-exported here
from chronoledger.world.http_common import SETUP_ERRORS, backoff_pause, is_local, make_client
from chronoledger.world.http_common import retry_after as _retry_after

__all__ = [
    "MODEL_KINDS",
    "ChatRequest",
    "LanguageModel",
    "ModelError",
    "OfflineModel",
    "OllamaModel",
    "OpenAICompatibleModel",
    "make_model",
]

#: The names :func:`make_model` accepts.
MODEL_KINDS = ("offline", "openai", "ollama")

_M = TypeVar("_M", bound="LanguageModel")
_MAX_BACKOFF = 8.0          # the longest pause the exponential backoff makes, in seconds
_MAX_RETRY_AFTER = 60.0     # the longest pause a server's Retry-After is granted
_CONNECT_TIMEOUT = 10.0     # the connect timeout, unless the timeout or connect_timeout is shorter
_EXCERPT = 200
_HISTORY_LINES = 12
_EMBED_BATCH = 256          # texts per embedding request: well under the servers' limits (OpenAI's is 2048)
_OFFLINE_DIM = 256          # the offline embedding's dimensions


# --------------------------------------------------------------------------
# requests


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything a model needs to speak for one agent at one turn.

    Frozen and self-contained (no references to the world's stores) so that
    requests can be handed to worker threads, recorded, and replayed; the
    ``seed`` makes the offline model's answer a pure function of the request.
    """

    kind: str
    speaker: str
    bio: str
    job: str
    interests: tuple[str, ...]
    others: tuple[str, ...]
    location: str
    activity: str | None
    topic: str
    prompt: str | None
    round: int
    seed: int
    history: tuple[str, ...] = ()
    #: what the speaker recalls (retrieved from its memories, best first)
    memories: tuple[str, ...] = ()
    #: how the speaker stands with the others ("Ben is your spouse (close)")
    relations: tuple[str, ...] = ()
    #: the speaker's family ("spouse: Ben")
    family: tuple[str, ...] = ()
    #: the simulated time ("Saturday 15 November 2025, 09:00")
    clock: str = ""

    def __post_init__(self) -> None:
        # Lists from a config or a caller become tuples, so that a request stays
        # hashable and the offline model's per-name caches can key on them.
        for field_name in ("interests", "others", "history", "memories", "relations", "family"):
            value = getattr(self, field_name)
            if type(value) is not tuple:
                object.__setattr__(self, field_name, tuple(value))
        # numpy integers (a scheduler indexes arrays) become Python ints: exact,
        # JSON-serialisable, and safe from uint64 overflow in the seed mixer.
        for field_name in ("round", "seed"):
            value = getattr(self, field_name)
            if type(value) is not int:
                object.__setattr__(self, field_name, int(value))

    def digest(self) -> int:
        """A CRC-32 of everything the request asks (not its seed): a run's log
        keeps it with each response, so that a replay notices a request that
        differs from the recorded one in any way, not only in who asks."""
        return zlib.crc32("\x1f".join((self.kind, self.speaker, self.bio, self.job, "\x1e".join(self.interests),
                                        "\x1e".join(self.others), self.location, self.activity or "", self.topic,
                                        self.prompt or "", str(self.round), "\x1e".join(self.history),
                                        "\x1e".join(self.memories), "\x1e".join(self.relations),
                                        "\x1e".join(self.family), self.clock))
                          .encode("utf-8", "surrogatepass"))

    def messages(self) -> list[dict]:
        """The request as OpenAI-style chat messages.

        Persona goes in the system message and the situation in the user
        message, so that a server can cache the persona part across the many
        turns one agent speaks in a run.
        """
        name = self.speaker.strip() or "an agent"
        system = [f"You are {name}, {_with_article(_clean(self.job)) or 'a member of a small community'}."]
        bio = self.bio.strip()
        if bio:
            system.append(bio)
        interests = [s for s in (_clean(i) for i in self.interests) if s]
        if interests:
            system.append("Your interests, strongest first: " + ", ".join(interests) + ".")
        if self.family:
            system.append("Your family: " + "; ".join(self.family) + ".")
        system.append("Stay in character and speak as yourself.")

        where = _where(self.location, self.activity)
        others = _names(self.others)
        topic = _clean(self.topic)
        user = []
        if self.clock:
            user.append(f"It is {self.clock}.")
        if self.kind == "group_meeting":
            user.append(f"You are in a group meeting {where} with {others or 'your colleagues'}.")
        elif self.kind == "solo_reflection":
            user.append(f"You are alone {where}, reflecting on your day.")
        elif self.kind == "insight":
            user.append(f"You are {where}, looking back on what you remember.")
        elif self.kind == "scripted":
            user.append(f"You are {where}" + (f" with {others}." if others else "."))
        else:
            user.append(f"You are talking with {others or 'someone'} {where}.")
        if self.relations:
            user.append("How you stand with them: " + "; ".join(self.relations) + ".")
        if topic:
            user.append(f"Topic: {topic}.")
        if self.memories:
            user.append("What you remember (most relevant first):\n" + "\n".join(f"- {m}" for m in self.memories))
        if self.prompt and self.prompt.strip():
            user.append(f"Prompt: {self.prompt.strip()}")
        if self.history:
            user.append("The conversation so far:\n" + "\n".join(self.history[-_HISTORY_LINES:]))
        if self.kind == "solo_reflection":
            user.append("Write your private thought.")
        elif self.kind == "insight":
            user.append("What do these memories tell you about your life and the people in it? "
                        "Write one insight.")
        elif self.kind == "group_meeting":
            user.append("Give your update." if self.round == 0 and not self.history else "Respond to the group.")
        elif self.kind == "scripted":
            user.append("Respond to the prompt.")
        else:
            user.append("Start the conversation." if self.round == 0 and not self.history
                        else "Reply to what was just said.")
        user.append("Answer in one or two sentences, in the first person, without prefixing your name.")
        return [{"role": "system", "content": " ".join(system)},
                {"role": "user", "content": "\n".join(user)}]


# --------------------------------------------------------------------------
# the interface


class LanguageModel:
    """What the scheduler talks to; subclass it to plug in another model.

    The batch interface (a whole tick at once) lets each implementation pick
    its own parallelism, while the scheduler stays single-threaded and
    deterministic about the order in which turns are stored.
    """

    #: Recorded with every turn so that a stored conversation says what wrote it.
    name: str = "abstract"

    def complete(self, requests: list[ChatRequest]) -> list[str]:
        """Return one non-empty text per request, in the order of ``requests``.

        Raises :class:`ModelError` when any text cannot be had: a run with a
        hole in a conversation would not be replayable.
        """
        raise NotImplementedError

    #: The model that :meth:`embed` uses, recorded with stored vectors so that vectors of
    #: different models are never compared; None when this model makes no embeddings.
    embedding_model: str | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        """One vector per text, in the order of ``texts``: float32, shape ``(len(texts), dim)``.

        Every row has unit L2 norm, so a dot product is the cosine similarity
        (what memory retrieval ranks by), whatever the backend returned.
        ``dim`` is fixed by :attr:`embedding_model`; an empty ``texts`` gives
        ``(0, dim)`` where the dimension is known without asking a server, and
        ``(0, 0)`` where it is not.  Raises :class:`ModelError` when any vector
        cannot be had, including when this model makes no embeddings.
        """
        raise ModelError(f"model {self.name}: does not make embeddings: {type(self).__name__} has no "
                         "embedding endpoint")

    def close(self) -> None:
        """Release threads and connections; a model that holds none keeps this no-op."""

    def __enter__(self: _M) -> _M:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# --------------------------------------------------------------------------
# the offline model

_M64 = 0xFFFFFFFFFFFFFFFF

# Bounded memo tables for the strings built from a request's fields: a run has
# few distinct names, places and topics, but hundreds of thousands of turns.
_CACHE_MAX = 1 << 16
_CLEAN: dict[str, str] = {}
_NAMES: dict[tuple, str] = {}
_WHERE: dict[tuple, str] = {}
_JOB: dict[str, str] = {}
_PROMPT: dict[str, str] = {}


def _clean(text: str | None) -> str:
    if not text:
        return ""
    out = _CLEAN.get(text)
    if out is None:
        out = " ".join(text.replace("_", " ").split())
        if len(_CLEAN) >= _CACHE_MAX:
            _CLEAN.clear()
        _CLEAN[text] = out
    return out


def _with_article(job: str) -> str:
    if not job:
        return ""
    if job[:1].isupper() or job.lower().startswith(("a ", "an ", "the ")):
        return job
    return ("an " if job[0].lower() in "aeiou" else "a ") + job


def _names(others: tuple[str, ...]) -> str:
    out = _NAMES.get(others)
    if out is None:
        names = [n for n in map(str.strip, map(str, others)) if n]
        if not names:
            out = ""
        elif len(names) == 1:
            out = names[0]
        else:
            out = ", ".join(names[:-1]) + " and " + names[-1]
        if len(_NAMES) >= _CACHE_MAX:
            _NAMES.clear()
        _NAMES[others] = out
    return out


def _where(location: str, activity: str | None) -> str:
    key = (location, activity)
    out = _WHERE.get(key)
    if out is None:
        loc = _clean(location)
        act = _clean(activity)
        if not loc:
            at = "here"
        elif loc.lower() == "home":
            at = "at home"
        elif loc[:1].isupper() or loc.lower().startswith("the "):
            at = "at " + loc
        else:
            at = "at the " + loc
        if act:
            out = f"during the {act}" if at == "here" else f"during the {act} {at}"
        else:
            out = at
        if len(_WHERE) >= _CACHE_MAX:
            _WHERE.clear()
        _WHERE[key] = out
    return out


def _job(job: str) -> str:
    out = _JOB.get(job)
    if out is None:
        out = _with_article(_clean(job)) or "someone in my line of work"
        if len(_JOB) >= _CACHE_MAX:
            _JOB.clear()
        _JOB[job] = out
    return out


def _prompt(prompt: str) -> str:
    out = _PROMPT.get(prompt)
    if out is None:
        out = " ".join(prompt.split()).rstrip(" .?!;:")
        if len(out) > 80:
            out = out[:77].rstrip() + "..."
        out = f'"{out}"' if out else "this question"
        if len(_PROMPT) >= _CACHE_MAX:
            _PROMPT.clear()
        _PROMPT[prompt] = out
    return out


# Placeholders: {o} the other participants, {t} the topic, {i} an interest,
# {w} where (location and activity, as an adverbial phrase), {j} the job with
# its article, {f} a filler clause from the pool's own list ({f_cap} the same,
# capitalised), {p} the quoted prompt (or "this question").
# Every template names {t}; every chat and meeting template names {o}.

_CHAT_FILLERS = (
    "I read a piece about it last night",
    "someone brought it up at lunch yesterday",
    "I keep going back and forth on it",
    "I finally tried it myself this week",
    "it came up three times today already",
    "I have a half-formed theory about it",
    "my notes on it are getting out of hand",
    "I changed my mind about it twice this week",
    "a friend sent me a long message about it",
    "I think I was wrong about it before",
    "it has been stuck in my head all day",
    "I found a really good example of it",
    "I can't stop noticing it everywhere",
    "I promised myself I'd learn more about it",
    "it reminded me of something you said",
    "I want a second opinion on it",
)

_CHAT_OPENERS = (
    "Hi {o}, good to catch you {w} — have you had any time for {t} lately?",
    "Hey {o}, I've been dying to talk about {t}, because {f}.",
    "Oh, {o}, funny running into you {w}; I was just thinking about {t}.",
    "Oh hi {o}! Can I pick your brain about {t} for a minute?",
    "So {o}, I have to tell you about {t}: {f}.",
    "Hey {o}, you're exactly who I hoped to see {w} — I need your take on {t}.",
    "Hi {o}, as {j} I keep coming back to {t}, and {f}.",
    "Hey {o}, random question: how do you feel about {t}?",
    "Good to see you {w}, {o}; what's new with you and {t}?",
    "Ah, {o}! I was hoping to bump into someone {w} who cares about {t} as much as I do.",
    "Hi {o}, I keep meaning to ask what you make of {t}, since {f}.",
    "Hey {o}, have you noticed how much {t} comes up {w}?",
    "Quick one before I forget, {o}: {f}, and it's about {t}.",
    "Hello {o}! I've got a story about {t} for you if you've got a minute.",
    "Hi {o}, nice to take a breather {w}; any news on the {t} front?",
    "Hey {o}, I think you'd have a good angle on {t}, and {f}.",
    "Sit with me a second, {o} — I want to hear your thoughts on {t}.",
    "Hi {o}, I don't often get to chat {w}, so let me ask: where do you stand on {t}?",
    "Hey {o}, remember our last chat about {t}? I think about it more than I expected.",
    "Hi {o}! Speaking as {j}, I'd love to hear an outside view on {t}.",
    "Can I make a small confession about {t}, {o}? {f_cap}.",
    "Hey {o}, what would you say is the hardest part of {t}?",
    "Well, {o}, look who's here {w} — just the person to ask about {t}.",
    "Hi {o}, I'm trying to get better at {t} and {f}.",
)

_CHAT_OPEN_TAILS = (
    "",
    "It ties into {i} for me, too.",
    "I'm curious whether you see a link with {i}.",
    "Honestly it's half the reason I love {i}.",
    "No pressure, I just like hearing how other people think.",
    "I could talk about it for hours, so stop me if I ramble.",
    "Tell me if I'm being strange about it.",
    "You always have a different angle on these things.",
    "Also, how's your week going?",
    "Maybe we can swap notes sometime.",
    "It's been a good break from {i}.",
    "I feel like you'd get it.",
    "Anyway, I'd love your opinion.",
)

_CHAT_REPLIES = (
    "That's a fair point, {o}, and it changes how I see {t}.",
    "I hadn't thought of {t} that way, {o} — {f}.",
    "Ha, {o}, you're not wrong about {t}.",
    "Honestly, {o}, I'm not so sure; {t} feels more complicated to me.",
    "Right, {o}, and that's exactly why {t} keeps me interested.",
    "I agree with you on {t}, {o}, though {f}.",
    "Interesting, {o} — as {j}, I see {t} a little differently.",
    "Good point, {o}; {t} is a lot like {i} in that way.",
    "Maybe, {o}, but I think {t} is more about patience than talent.",
    "You've half convinced me about {t}, {o}.",
    "Wait, {o}, say more — that's not what I expected to hear about {t}.",
    "Funny you say that, {o}; {f}, so {t} is fresh in my mind.",
    "I'm with you, {o}: {t} deserves more attention than it gets.",
    "Hmm, {o}, I'd push back a little on {t}, because {f}.",
    "That's the best case for {t} I've heard in a while, {o}.",
    "Okay {o}, you've given me something to think about with {t}.",
    "True, {o}, although {t} looks different from where I sit {w}.",
    "Exactly, {o}! That's what I keep telling people about {t}.",
    "Fair enough, {o}; I might try your approach to {t}.",
    "I see it, {o}, but {t} never works that neatly for me.",
    "Oh, {o}, I love that — it's the side of {t} nobody talks about.",
    "Same here, {o}; {f}, and {t} is why.",
    "Talking about {t} {w} with you, {o}, is exactly what I needed.",
    "I love that we can get into {t} {w}, {o}.",
)

_CHAT_REPLY_TAILS = (
    "",
    "What would you do next?",
    "Let's keep talking about it later.",
    "I'll try that and tell you how it goes.",
    "Does that happen to you with {i} too?",
    "Anyway, thanks for listening.",
    "You should bring that up at the next meeting.",
    "I might write that down.",
    "Let's see who's right by next week.",
    "It makes me want to get back to {i}.",
    "That's the fun of it, I suppose.",
    "I owe you a coffee for that one.",
    "Funny to get into this {w}.",
    "Not the talk I expected to have {w}.",
)

_GROUP_FILLERS = (
    "I expect to wrap up by the end of the week",
    "I'm blocked on one small thing",
    "I could use a second pair of eyes",
    "the next step is clearer now",
    "I'd like feedback before I go further",
    "it took longer than I planned",
    "the first results look promising",
    "I cut the scope a little",
    "I wrote up my notes for anyone curious",
    "I'm a bit behind but catching up",
    "I found a simpler way to do it",
    "nothing is on fire",
    "I'd love to pair with someone on it",
    "I learned a lot doing it",
)

_GROUP_STATUS = (
    "Quick update for {o}: I made decent progress on {t} and {f}.",
    "From my side, {o}, {t} is moving along and {f}.",
    "Status from me, {o}: {t} is on track, and {f}.",
    "Hi {o}, short version — I worked on {t} {w}, and {f}.",
    "Okay {o}, my update is about {t}: {f}.",
    "As {j}, {o}, my update is mostly {t}, and {f}.",
    "Let me go first, {o}: {t} went better than expected, and {f}.",
    "Not much drama here, {o}; {t} is steady and {f}.",
    "My two cents for {o}: {t} needs a bit more time, and {f}.",
    "Update for the group — {o}, I spent most of my time on {t}, and {f}.",
    "So, {o}, on {t}: {f}.",
    "Quick one from me, {o}: {t} is my priority right now, and {f}.",
    "Hi all — {o}, I've been heads-down on {t}, and {f}.",
    "To keep it short, {o}: {t} made progress {w}, and {f}.",
    "Here's where I am, {o}: {t} is about halfway there, and {f}.",
    "Good news first, {o}: {t} is working, and {f}.",
    "Honest update, {o}: {t} was harder than I thought, and {f}.",
    "For everyone's notes, {o}: {t} is my main thread, and {f}.",
    "My piece of this, {o}, is {t}, and {f}.",
    "Checking in, {o}: I kept at {t} {w}, and {f}.",
    "Nothing dramatic from me, {o}, just steady work on {t}; {f}.",
    "Thanks, {o}; on my side {t} is moving, and {f}.",
    "Let me share a small win with {o}: {t} finally clicked, and {f}.",
    "In short, {o}, {t} is where my energy went, and {f}.",
    "Meeting {w} suits me, {o}: {t} is moving, and {f}.",
)

_GROUP_FOLLOWUPS = (
    "Building on that, {o}, I think {t} is where we can help each other.",
    "Agreed, {o} — let's make {t} the first thing we check next time.",
    "One question for {o}: who else is touching {t} right now?",
    "I can take the {t} piece if that helps, {o}.",
    "Good discussion, {o}; I'll fold {t} into my plan.",
    "Before we wrap, {o}, can we agree on a next step for {t}?",
    "That matches what I saw with {t}, {o}.",
    "I'd rather not rush {t}, {o}; {f}.",
    "I'm happy to pair on {t}, {o}, since {f}.",
    "Let's not lose {t} in the shuffle, {o}.",
    "Same here, {o}: {t} is on my list too, and {f}.",
    "Noted, {o}; I'll report back on {t} next time.",
    "Good call, {o}; for {t}, {f}.",
    "Just to add, {o}: on {t}, {f}.",
    "I'm on board, {o}, as long as {t} gets a proper look, because {f}.",
    "Can I flag something, {o}? On {t}, {f}.",
    "From the {t} side, {o}, I'd add that {f}.",
    "That works for me, {o}; {t} can wait a day, and {f}.",
    "Thanks, {o} — as {j}, I'll keep {t} moving.",
    "Fair, {o}; I'll keep {t} small and steady for now.",
    "Let's pick {t} up again {w} next time, {o}.",
    "Good to sort out {t} {w}, {o}; {f}.",
)

_GROUP_TAILS = (
    "",
    "That's all from me.",
    "Happy to take questions.",
    "I'll post details after this.",
    "Next up for me is {i}.",
    "Shout if anything is unclear.",
    "Thanks, everyone.",
    "Let's keep the next one short.",
    "More next time.",
    "I'm also keeping an eye on {i}.",
    "Good to do this {w}.",
    "Glad we could meet {w}.",
)

_FEELINGS = (
    "calm", "restless", "grateful", "a little tired", "oddly energised", "content",
    "distracted", "hopeful", "thoughtful", "proud", "a bit scattered", "curious",
    "peaceful", "impatient", "light", "focused",
)

_REFLECTIONS = (
    "I feel {f} {w}, and my mind keeps drifting to {t}.",
    "Sitting {w}, I realise how much {t} still matters to me.",
    "Today I'm {f}; {t} gave me something to chew on.",
    "I keep thinking about {t}, and honestly I feel {f}.",
    "Note to self: spend more time on {t}, because it leaves me {f}.",
    "As {j}, I don't always make room for {t}, and I should.",
    "I'm {f} right now, and {t} is the reason.",
    "A quiet moment {w} — I want to get better at {t}.",
    "I wonder whether I give {t} enough of my attention.",
    "Looking back on the day, {t} is what stands out, and I feel {f}.",
    "I noticed I get {f} whenever {t} comes up; worth remembering.",
    "I should write down what I learned about {t} before I forget.",
    "Funny how {t} keeps pulling me back, even {w}.",
    "My plan: one small step on {t} tomorrow, nothing heroic.",
    "I'm {f} and a little surprised by how much {t} means to me.",
    "If I'm honest, {t} is where I'm growing the most.",
    "I want to talk to someone about {t} soon; I've been keeping it to myself.",
    "Being {w} helps me think about {t} more clearly.",
    "I feel {f}; maybe {t} can wait until tomorrow.",
    "Some days {t} feels easy, and today I felt {f} about it.",
    "I'm grateful I had time for {t} today.",
    "Thinking about {t} {w} leaves me {f}.",
    "I promised myself I'd take {t} more seriously, and I mean it.",
    "Okay, deep breath: {t} will come together if I keep at it.",
    "Part of me is {f}, and part of me just wants to get back to {t}.",
    "I learn the most about {t} when I slow down, like now.",
    "A quiet thought of mine {w}: {t} is worth the effort.",
    "I'd like tomorrow to have more {t} in it.",
    "I'm {f}, and I think {t} has something to do with it.",
    "Looking at my week, I notice {t} gives me energy rather than taking it.",
)

_REFLECTION_TAILS = (
    "",
    "It connects to {i}, too.",
    "Maybe I'll bring it up with someone.",
    "Good to notice.",
    "I'll keep an eye on that.",
    "That's enough thinking for now.",
    "Tomorrow I'll try something new with {i}.",
    "Small steps.",
    "Worth remembering.",
    "I'll come back to this.",
    "It's easier to see that {w}.",
    "I'm glad I stopped to think {w}.",
)

_SCRIPTED = (
    "About {p} — my honest answer is that {t} matters more than we admit.",
    "If you're asking me, {o}, {t} is the heart of it: {f}.",
    "As for {p}, good question; as {j}, I'd start with {t}.",
    "My first reaction to {p} is to think about {t}.",
    "Okay, {o}, here's my take on {t}: {f}.",
    "I've thought about this before — {t} is where I'd begin, {o}.",
    "Honestly, {t} is what comes to mind, and {f}.",
    "That prompt makes me think of {t} {w}.",
    "For me, {o}, the answer runs through {t}.",
    "Let me answer {p} the only way I know: through {t}.",
    "I'd say {t}, {o}, and {f}.",
    "Speaking as {j}: {t}, every time.",
    "I didn't expect to be asked that {w}, but {t} is my answer.",
    "Hmm, {p} — I'd tie it back to {t}, {o}.",
    "Here's a small story about {t} that answers it: {f}.",
    "If I had to pick one thing, {o}, it'd be {t}.",
    "To {p}, I'd say start small with {t}.",
    "Good prompt, {o}; it pulls me straight to {t}.",
    "My gut says {t}, and my head agrees, because {f}.",
    "I'll keep it short, {o}: {t}.",
    "You'll laugh, {o}, but {t} is my answer again.",
    "The part of {p} that speaks to me is {t}.",
    "I can only answer from experience with {t}: {f}.",
    "That question lands differently {w}; I'd say {t}.",
    "Put simply, {o}, {t} is where I'd look first.",
    "I keep circling back to {t} on this one, {o}.",
    "Reading {p}, my mind goes straight to {t}.",
    "I'd frame it around {t}, {o}, since {f}.",
    "Truthfully, {t} is how I'd approach {p}.",
    "It's a fair ask, {o}, and {t} is my answer: {f}.",
)

_SCRIPTED_TAILS = (
    "",
    "That's my view, anyway.",
    "I'm curious what the others think.",
    "It also touches {i}.",
    "Happy to be convinced otherwise.",
    "Ask me again tomorrow and I might add more.",
    "That's the short version.",
    "I could say much more about {i}.",
    "Not what I expected to think about {w}.",
    "Funny to be asked that {w}.",
)

# Used for {i} when the speaker has no interest other than the topic itself.
_SPARE_INTERESTS = (
    "the week ahead", "getting enough sleep", "the people around me", "learning something new",
    "what to cook tonight", "staying curious", "my long-term plans", "small daily habits",
)

_FIELDS = {"o": "{0}", "t": "{1}", "i": "{2}", "w": "{3}", "j": "{4}", "f": "{5}", "p": "{6}", "f_cap": "{7}"}


#: (texts with positional fields, how many, fillers, the fillers capitalised, how many)
_Pool = tuple[tuple[str, ...], int, tuple[str, ...], tuple[str, ...], int]


def _pool(templates: tuple[str, ...], tails: tuple[str, ...], fillers: tuple[str, ...]) -> _Pool:
    # Every template joined with every tail, compiled to positional fields:
    # one modulo picks both, and one str.format renders the text.
    combos = tuple((tpl + " " + tail if tail else tpl).format(**_FIELDS) for tpl in templates for tail in tails)
    return combos, len(combos), fillers, tuple(f[:1].upper() + f[1:] for f in fillers), len(fillers)


_POOLS = {
    "chat_open": _pool(_CHAT_OPENERS, _CHAT_OPEN_TAILS, _CHAT_FILLERS),
    "chat_reply": _pool(_CHAT_REPLIES, _CHAT_REPLY_TAILS, _CHAT_FILLERS),
    "group_status": _pool(_GROUP_STATUS, _GROUP_TAILS, _GROUP_FILLERS),
    "group_followup": _pool(_GROUP_FOLLOWUPS, _GROUP_TAILS, _GROUP_FILLERS),
    "reflection": _pool(_REFLECTIONS, _REFLECTION_TAILS, _FEELINGS),
    "scripted": _pool(_SCRIPTED, _SCRIPTED_TAILS, _CHAT_FILLERS),
}
# kind -> pool, for the first round of a conversation and for the rounds after
# it; an unknown kind talks like a duo chat.
_OPENING = {"duo_chat": _POOLS["chat_open"], "group_meeting": _POOLS["group_status"],
            "solo_reflection": _POOLS["reflection"], "scripted": _POOLS["scripted"]}
_CONTINUING = {"duo_chat": _POOLS["chat_reply"], "group_meeting": _POOLS["group_followup"],
               "solo_reflection": _POOLS["reflection"], "scripted": _POOLS["scripted"]}
_NSPARE = len(_SPARE_INTERESTS)


def _offline_texts(requests: list[ChatRequest]) -> list[str]:
    # One loop with everything inlined: this renders every turn of a dry run.
    out: list[str] = []
    append = out.append
    clean_get = _CLEAN.get
    names_get = _NAMES.get
    where_get = _WHERE.get
    job_get = _JOB.get
    opening = _OPENING
    continuing = _CONTINUING
    spare = _SPARE_INTERESTS
    for r in requests:
        # splitmix64 of the seed: the only source of choice, so the text depends
        # on the request alone (not on call order, threads or PYTHONHASHSEED).
        z = (r.seed + 0x9E3779B97F4A7C15) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31

        kind = r.kind
        pool = (opening.get(kind) or opening["duo_chat"]) if r.round <= 0 else \
            (continuing.get(kind) or continuing["duo_chat"])
        combos, ncombos, fillers, fillers_cap, nfill = pool
        k = (z >> 20) % nfill

        interests = r.interests
        topic = r.topic
        t = (clean_get(topic) or _clean(topic)) if topic else ""
        if interests:
            n = len(interests)
            idx = ((z >> 40) & 3) % n
            first = interests[idx]
            i = clean_get(first) or _clean(first)
            if not t:
                t = i
            if i == t or not i:
                i = _clean(interests[(idx + 1) % n]) if n > 1 else ""
                if i == t or not i:
                    i = spare[(z >> 44) % _NSPARE]
        else:
            i = spare[(z >> 44) % _NSPARE]
        if not t:
            t = "how things are going"

        others = r.others
        o = (names_get(others) or _names(others) or "everyone") if others else "everyone"
        location = r.location
        activity = r.activity
        w = where_get((location, activity)) or _where(location, activity)
        job = r.job
        j = job_get(job) or _job(job)
        prompt = r.prompt
        p = (_PROMPT.get(prompt) or _prompt(prompt)) if prompt else "this question"
        memories = r.memories
        if kind == "insight":
            append(_insight(z, memories, t))
            continue
        text = combos[z % ncombos].format(o, t, i, w, j, fillers[k], p, fillers_cap[k])
        if r.history:
            # never the same line twice in one conversation: the next template that is not taken
            said = {h.split(": ", 1)[-1] for h in r.history}
            step = 1
            while text in said and step < ncombos:
                text = combos[(z + step * 7919) % ncombos].format(o, t, i, w, j, fillers[k], p, fillers_cap[k])
                step += 1
        if memories and (z >> 50) & 3:
            # three turns in four bring up something remembered: the best memory, or the next; never one
            # already brought up in this conversation
            m = memories[((z >> 53) & 1) % len(memories)]
            if not any(m in h for h in r.history):
                text += " " + _RECALL[(z >> 54) % _NRECALL].format(_recalled(m))
        append(text)
    return out


_RECALL = (
    "That reminds me: {}",
    "I still remember this: {}",
    "I keep thinking back to this: {}",
    "It brings back something: {}",
    "Earlier I noted: {}",
    "Which makes me think of this: {}",
)
_NRECALL = len(_RECALL)
_INSIGHTS = (
    "Looking back, this stays with me: {0} I think {2} matters to me more than I let on.",
    "Two things stand out when I think it over: {0} And {1} I should make more room for {2}.",
    "What I take from my days: {0} The people around me shape how I feel about {2}.",
    "I notice a pattern: {0} And {1} It's {2} that keeps me going.",
    "If I'm honest with myself, this says where I stand: {0} And {2} is worth my time.",
)


def _recalled(memory: str) -> str:
    m = memory.strip()
    return m if m[-1:] in '.!?"' else m + "."


def _insight(z: int, memories: tuple[str, ...], topic: str) -> str:
    """A reflection over memories: what they have in common, in the agent's words."""
    if not memories:
        return f"I want to understand what {topic} means to me."
    first = _recalled(memories[0])
    second = _recalled(memories[1]) if len(memories) > 1 else first
    return _INSIGHTS[z % len(_INSIGHTS)].format(first, second, topic)


class OfflineModel(LanguageModel):
    """Template speech for dry runs, tests and benchmarks: no network, no cost.

    Deterministic so that two runs of a world with the same seed store the same
    conversations byte for byte; persona-aware (interests, names, place) and
    varied so that what it writes still exercises the stores and reports the
    way real model output would.  About two microseconds per text.
    """

    name = "offline"
    embedding_model = f"offline-hash-{_OFFLINE_DIM}"

    def complete(self, requests: list[ChatRequest]) -> list[str]:
        """Render every request; a pure function of each request, so batching is irrelevant."""
        return _offline_texts(requests)

    def embed(self, texts: list[str]) -> np.ndarray:
        """A hashed bag of words per text (see :func:`_offline_vector`): texts that share words score a
        higher cosine than texts that do not, which is enough to exercise and replay retrieval offline."""
        texts = _embed_texts(self.name, texts)
        out = np.empty((len(texts), _OFFLINE_DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = _offline_vector(text)
        return out


# --------------------------------------------------------------------------
# embeddings

_WORD = re.compile(r"[^\W_]+")          # runs of letters and digits, in any script
# a text without words still needs a direction: this one is equally far from every word (a cosine of 1/16 either way)
_NO_WORDS = np.full(_OFFLINE_DIM, 1.0 / np.sqrt(_OFFLINE_DIM))


def _offline_vector(text: str) -> np.ndarray:
    """The offline embedding of one text: its words, lower-cased, hashed to signed counts, L2-normalised.

    CRC-32 rather than :func:`hash`, whose value for a str changes with
    PYTHONHASHSEED, so that every process gives the same bytes.  The sign
    (bit 31, independent of the bucket's low bits) makes two words that share
    a bucket cancel as often as they add up, so that a dot product estimates
    the texts' shared words without a bias from collisions.
    """
    vector = np.zeros(_OFFLINE_DIM, dtype=np.float64)
    for word in _WORD.findall(text.lower()):
        h = zlib.crc32(word.encode("utf-8", "surrogatepass"))
        vector[h % _OFFLINE_DIM] += 1.0 if h >> 31 else -1.0
    norm = float(np.sqrt(vector @ vector))
    # no words, or words that cancel out exactly
    return vector / norm if norm else _NO_WORDS


def _embed_texts(name: str, texts: Any) -> list[str]:
    """``texts`` as a list of str, checked: a lone str would otherwise be embedded letter by letter."""
    if isinstance(texts, (str, bytes)):
        raise ModelError(f"model {name}: cannot embed a single {type(texts).__name__}: pass a list of texts")
    try:
        texts = list(texts)
    except TypeError:
        raise ModelError(f"model {name}: cannot embed {type(texts).__name__}: pass a list of texts") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ModelError(f"model {name}: cannot embed text {i}: it is {type(text).__name__}, not str")
    return texts


def _what(value: object) -> str:
    """A JSON value as an error message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "the string " + _excerpt(json.dumps(value))
    if isinstance(value, list):
        return f"a list of {len(value)}" if value else "an empty list"
    if isinstance(value, dict):
        return "an object"
    return f"the number {value!r}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _unit_rows(where: str, rows: list[Any], first: int, dim: int | None) -> np.ndarray:
    """A server's vectors for texts ``first``, ``first + 1``... as float32 rows of unit length.

    Every vector is checked, and a bad one is a :class:`ModelError` naming the
    text and the fault: once stored, a short, NaN or zero vector would spoil
    every later ranking without a word.  ``dim``: the length the vectors of
    the batches before had (None for the first batch).
    """
    out: np.ndarray | None = None
    for i, row in enumerate(rows):
        which = f"the embedding of text {first + i}"
        if not isinstance(row, list) or not row:
            raise ModelError(f"{where} answered {which} as {_what(row)}, not a list of numbers")
        if not set(map(type, row)) <= {int, float}:          # bool is a type of its own here, as it should be
            bad = next(x for x in row if type(x) is not int and type(x) is not float)
            raise ModelError(f"{where} answered {which} with {_what(bad)} among its numbers")
        if dim is None:
            dim = len(row)
        if len(row) != dim:
            raise ModelError(f"{where} answered embeddings of different lengths: {len(row)} numbers for "
                             f"text {first + i}, {dim} for the texts before it")
        if out is None:
            out = np.empty((len(rows), dim), dtype=np.float64)
        try:
            out[i] = row
        except OverflowError:                   # an int beyond any float
            raise ModelError(f"{where} answered {which} with a number too large for a float") from None
    if out is None:
        return np.empty((0, dim or 0), dtype=np.float32)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        raise ModelError(f"{where} answered the embedding of text {first + int(np.argmin(finite))} "
                         "with NaN or infinity among its numbers")
    scale = np.abs(out).max(axis=1)
    if not scale.all():
        raise ModelError(f"{where} answered the embedding of text {first + int(np.argmin(scale))} "
                         "as all zeros, which has no direction to compare")
    out /= scale[:, None]                       # at most 1 first, so that squaring cannot overflow
    out /= np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]
    return out.astype(np.float32)


# --------------------------------------------------------------------------
# HTTP models


def _excerpt(raw: bytes | str | None) -> str:
    if not raw:
        return "(empty body)"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


class _HTTPChatModel(LanguageModel):
    """Retries, timeouts, concurrency and error messages shared by the HTTP models.

    Each model holds one :class:`httpx.Client` for its whole life, so a run's
    thousands of requests share a few kept-alive connections (no TCP or TLS
    handshake per request); :meth:`close` closes it.  The retry policy is ours
    (httpx's own transport retries cover only failed connects, without jitter):
    a connection error, a timeout, a 429 or a 5xx is tried again, up to
    ``max_retries`` times, after the pause the server's ``Retry-After`` asks for
    (at most ``_MAX_RETRY_AFTER`` seconds) or else an exponential backoff with
    jitter.  The jitter comes from a ``random.Random`` of the model's own, so
    timing never touches the simulation's generator: a run's results depend on
    the replies alone.
    """

    _path = ""
    _embed_path = ""
    _prefix = ""

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None, timeout: float,
                 max_retries: int, backoff: float, max_concurrent: int, temperature: float,
                 connect_timeout: float | None = None, max_tokens: int | None = None, send_seed: bool = True,
                 embedding_model: str | None = None):
        try:
            scheme = urllib.parse.urlsplit(base_url).scheme if base_url else ""
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            raise ModelError(f"{self._prefix} model: base_url {base_url!r} is not an http(s) URL")
        if not model:
            raise ModelError(f"{self._prefix} model: no model name given")
        if embedding_model is not None and not (isinstance(embedding_model, str) and embedding_model.strip()):
            raise ModelError(f"{self._prefix} model: embedding_model must be a model name or None, "
                             f"got {embedding_model!r}")
        if not timeout > 0:
            raise ModelError(f"{self._prefix} model: timeout must be positive, got {timeout!r}")
        if connect_timeout is not None and not connect_timeout > 0:
            raise ModelError(f"{self._prefix} model: connect_timeout must be positive, got {connect_timeout!r}")
        if max_retries < 0:
            raise ModelError(f"{self._prefix} model: max_retries must be 0 or more, got {max_retries!r}")
        if not backoff >= 0:
            raise ModelError(f"{self._prefix} model: backoff must be 0 or more, got {backoff!r}")
        if max_concurrent < 1:
            raise ModelError(f"{self._prefix} model: max_concurrent must be at least 1, got {max_concurrent!r}")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + self._path
        self.embed_url = self.base_url + self._embed_path
        self.model = model
        self.embedding_model = embedding_model
        self.name = f"{self._prefix}:{model}"
        self.timeout = float(timeout)
        # a server that does not accept a connection in a few seconds is not going to
        self.connect_timeout = float(connect_timeout) if connect_timeout is not None else \
            min(self.timeout, _CONNECT_TIMEOUT)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_concurrent = int(max_concurrent)
        if not (isinstance(temperature, (int, float)) and 0 <= temperature <= 2):
            raise ModelError(f"{self._prefix} model: temperature must be from 0 to 2, got {temperature!r}")
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                       or max_tokens < 1):
            raise ModelError(f"{self._prefix} model: max_tokens must be a whole number of at least 1, "
                             f"got {max_tokens!r}")
        self.temperature = float(temperature)
        self.max_tokens = max_tokens
        # each request's seed (drawn from the run's) sent where the API takes one, so that a server that
        # honours it samples the same reply again; 31 bits, which every server accepts
        self.send_seed = bool(send_seed)
        self.api_key_env = api_key_env
        local = is_local(self.base_url)
        key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not key and not local:
            raise ModelError(f"{self.name}: no API key for {self.base_url}: set the environment variable "
                             f"{api_key_env} (only a server on 127.0.0.1/localhost may go without one)")
        if key and not (key.isascii() and key.isprintable()):
            raise ModelError(f"{self.name}: the API key in {api_key_env} cannot be sent in an HTTP header: "
                             "it holds a character that is not printable ASCII")
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "chronoledger-world"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            self._client = make_client(
                headers=headers, local=local,
                # read (and write, and waiting for a pooled connection) get the whole timeout
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                # as many kept-alive connections as requests in flight
                limits=httpx.Limits(max_connections=self.max_concurrent,
                                    max_keepalive_connections=self.max_concurrent))
        except SETUP_ERRORS as exc:
            raise ModelError(f"{self.name}: cannot set up a client for {self.base_url}: "
                             f"{type(exc).__name__}: {exc}") from None
        self._jitter = random.Random()          # from os.urandom: never the simulation's generator
        self._stop = threading.Event()          # set by close(): no more attempts, no more waiting
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- subclass hooks
    def _payload(self, request: ChatRequest) -> dict:
        raise NotImplementedError

    def _content(self, reply: Any) -> object:      # reply: the server's JSON
        raise NotImplementedError

    def _vectors(self, reply: Any, n: int, where: str, raw: bytes) -> list[Any]:
        """The ``n`` vectors (unchecked) of an embedding reply, in the order of the texts sent."""
        raise NotImplementedError

    # -- the interface
    def complete(self, requests: list[ChatRequest]) -> list[str]:
        """Send the requests with at most ``max_concurrent`` in flight; texts come back in request order.

        A server is slow per request but happy to serve several at once, so a
        tick with hundreds of conversations takes the time of its slowest
        batches rather than the sum of all of them.
        """
        if self._closed:
            raise ModelError(f"{self.name}: complete() called after close()")
        requests = list(requests)
        if len(requests) <= 1 or self.max_concurrent == 1:
            return [self._one(r) for r in requests]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="chronoledger-model")
            pool = self._pool
        futures = [pool.submit(self._one, r) for r in requests]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors from the server's embedding endpoint (see :meth:`LanguageModel.embed`).

        The texts go in requests of at most ``_EMBED_BATCH``, one after the
        other, each with the retries, backoff and timeouts of :meth:`complete`;
        the rows are normalised here, since not every server normalises them.
        """
        if self.embedding_model is None:
            raise ModelError(f"model {self.name}: does not make embeddings: no embedding_model was configured "
                             f"(name a model that {self.embed_url} serves)")
        if self._closed:
            raise ModelError(f"{self.name}: embed() called after close()")
        texts = _embed_texts(self.name, texts)
        where = f"{self.name}: POST {self.embed_url}"
        parts: list[np.ndarray] = []
        dim: int | None = None
        for first in range(0, len(texts), _EMBED_BATCH):
            batch = texts[first:first + _EMBED_BATCH]
            body = json.dumps({"model": self.embedding_model, "input": batch}).encode("utf-8")
            reply, raw = self._post(body, self.embed_url)
            rows = _unit_rows(where, self._vectors(reply, len(batch), where, raw), first, dim)
            dim = rows.shape[1]
            parts.append(rows)
        return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)

    def close(self) -> None:
        """Stop retrying, stop the worker threads and close the connections.

        A request already on the wire is waited for (httpx cannot cancel a
        request from another thread), at most its timeout; no retry follows it.
        """
        self._closed = True
        self._stop.set()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    # -- one request
    def _one(self, request: ChatRequest) -> str:
        reply, raw = self._post(json.dumps(self._payload(request)).encode("utf-8"))
        content = self._content(reply)
        if not isinstance(content, str) or not content.strip():
            raise ModelError(f"{self.name}: POST {self.url} answered without any message content: {_excerpt(raw)}")
        return content.strip()

    def _backoff(self, retry: int) -> float:
        """The pause before retry number ``retry`` (1, 2, ...): exponential, capped, with "equal jitter".

        Half of each step is fixed and half drawn at random, so that the many
        requests of a tick that failed together do not come back together.
        """
        return backoff_pause(self.backoff, retry, self._jitter, _MAX_BACKOFF)

    def _sleep(self, seconds: float) -> None:
        """Wait before the next attempt; :meth:`close` (or Ctrl-C in the main thread) ends the wait."""
        self._stop.wait(seconds)

    def _post(self, body: bytes, url: str | None = None) -> tuple[Any, bytes]:   # (the reply's JSON, its bytes)
        url = self.url if url is None else url
        attempts = self.max_retries + 1
        what, delay = "", 0.0
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self._sleep(delay)
            if self._stop.is_set():
                raise ModelError(f"{self.name}: POST {url} stopped: the model was closed"
                                 + (f" (last: {what})" if what else ""))
            try:
                resp = self._client.post(url, content=body)
            except httpx.TimeoutException as exc:
                limit = self.connect_timeout if isinstance(exc, httpx.ConnectTimeout) else self.timeout
                what = f"{'connect ' if isinstance(exc, httpx.ConnectTimeout) else ''}timed out after {limit:g} s"
                delay = self._backoff(attempt)
                continue
            except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
                what = f"connection failed: {str(exc) or type(exc).__name__}"
                delay = self._backoff(attempt)
                continue
            except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError, RuntimeError) as exc:
                # not worth another try: a bad request, a body that cannot be decoded, a closed client
                raise ModelError(f"{self.name}: POST {url} failed: {type(exc).__name__}: {exc}") from None
            status, raw = resp.status_code, resp.content
            if 200 <= status < 300:
                try:
                    return json.loads(raw), raw
                except ValueError:
                    raise ModelError(f"{self.name}: POST {url} answered with invalid JSON: "
                                     f"{_excerpt(raw)}") from None
            what = f"HTTP {status}: {_excerpt(raw)}"
            if status == 429 or status >= 500:
                asked = _retry_after(resp.headers.get("Retry-After"))
                delay = self._backoff(attempt) if asked is None else min(asked, _MAX_RETRY_AFTER)
                continue
            if 300 <= status < 400 and resp.headers.get("Location"):
                what += f" (redirected to {resp.headers['Location']}: give that as the base URL)"
            raise ModelError(f"{self.name}: POST {url} failed: {what} "
                             f"(attempt {attempt} of {attempts}; a {status} is not retried)")
        raise ModelError(f"{self.name}: POST {url} failed after {attempts} "
                         f"attempt{'s' if attempts != 1 else ''}: {what}")


class OpenAICompatibleModel(_HTTPChatModel):
    """A model behind the OpenAI chat-completions protocol.

    That protocol is spoken by OpenAI and by most self-hosted servers (vLLM,
    llama.cpp, LM Studio, LiteLLM), so one class covers the hosted and the
    local case; only ``base_url`` and the key differ.
    """

    _path = "/chat/completions"
    _embed_path = "/embeddings"
    _prefix = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 30.0,
                 max_retries: int = 3, backoff: float = 0.5, max_concurrent: int = 4, temperature: float = 0.7,
                 connect_timeout: float | None = None, max_tokens: int | None = None, send_seed: bool = True,
                 embedding_model: str | None = None):
        super().__init__(base_url, model, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries,
                         backoff=backoff, max_concurrent=max_concurrent, temperature=temperature,
                         connect_timeout=connect_timeout, max_tokens=max_tokens, send_seed=send_seed,
                         embedding_model=embedding_model)

    def _payload(self, request: ChatRequest) -> dict:
        body = {"model": self.model, "messages": request.messages(), "temperature": self.temperature}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.send_seed:
            body["seed"] = request.seed & _SEED_MASK
        return body

    def _content(self, reply: Any) -> object:      # reply: the server's JSON
        try:
            return reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return None

    def _vectors(self, reply: Any, n: int, where: str, raw: bytes) -> list[Any]:
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ModelError(f"{where} answered without a \"data\" list of embedding objects: {_excerpt(raw)}")
        if len(data) != n:
            raise ModelError(f"{where} answered {_count(len(data), 'embedding')} for {_count(n, 'text')}")
        if all("index" not in item for item in data):
            return [item.get("embedding") for item in data]      # a server that leaves it out answers in order
        # the protocol promises each item its text's index, not the order of the list
        indices = [item.get("index") for item in data]
        if sorted(i if type(i) is int else -1 for i in indices) != list(range(n)):
            raise ModelError(f"{where} answered embeddings whose indices are not 0 to {n - 1} once each: "
                             f"{_excerpt(json.dumps(indices))}")
        ordered: list[Any] = [None] * n
        for item in data:
            ordered[item["index"]] = item.get("embedding")
        return ordered


class OllamaModel(_HTTPChatModel):
    """A model served by a local Ollama, through its native ``/api/chat``.

    The native endpoint (rather than Ollama's OpenAI shim) works with every
    Ollama version and needs no key; ``api_key_env`` is there for an Ollama
    put behind an authenticating proxy.
    """

    _path = "/api/chat"
    _embed_path = "/api/embed"
    _prefix = "ollama"

    def __init__(self, base_url: str = "http://127.0.0.1:11434", model: str = "llama3.1", *,
                 api_key_env: str | None = None, timeout: float = 30.0, max_retries: int = 3, backoff: float = 0.5,
                 max_concurrent: int = 4, temperature: float = 0.7, connect_timeout: float | None = None,
                 max_tokens: int | None = None, send_seed: bool = True, embedding_model: str | None = None):
        super().__init__(base_url, model, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries,
                         backoff=backoff, max_concurrent=max_concurrent, temperature=temperature,
                         connect_timeout=connect_timeout, max_tokens=max_tokens, send_seed=send_seed,
                         embedding_model=embedding_model)

    def _payload(self, request: ChatRequest) -> dict:
        options: dict[str, Any] = {"temperature": self.temperature}
        if self.max_tokens is not None:
            options["num_predict"] = self.max_tokens          # Ollama's name for it
        if self.send_seed:
            options["seed"] = request.seed & _SEED_MASK
        return {"model": self.model, "messages": request.messages(), "stream": False, "options": options}

    def _content(self, reply: Any) -> object:      # reply: the server's JSON
        try:
            return reply["message"]["content"]
        except (KeyError, TypeError):
            return None

    def _vectors(self, reply: Any, n: int, where: str, raw: bytes) -> list[Any]:
        # /api/embed, not the older /api/embeddings: it takes a list and answers in the order given
        vectors = reply.get("embeddings") if isinstance(reply, dict) else None
        if not isinstance(vectors, list):
            raise ModelError(f"{where} answered without an \"embeddings\" list: {_excerpt(raw)}")
        if len(vectors) != n:
            raise ModelError(f"{where} answered {_count(len(vectors), 'embedding')} for {_count(n, 'text')}")
        return vectors


#: The bits of a request's seed sent to a server (a signed 32-bit integer, which every server takes).
_SEED_MASK = 0x7FFFFFFF


def make_model(kind: str, *, base_url: str | None = None, model: str | None = None, max_concurrent: int = 4,
               timeout: float = 30.0, max_retries: int = 3, connect_timeout: float | None = None,
               temperature: float = 0.7, max_tokens: int | None = None, send_seed: bool = True,
               embedding_model: str | None = None) -> LanguageModel:
    """The model a command line or config names, with defaults from the environment.

    Keeps the choice of model a string (``--model openai``) so that the world's
    config and CLI need not know the classes.  OPENAI_BASE_URL (openai),
    OLLAMA_HOST (ollama) and CHRONOLEDGER_MODEL (both) let a user point a run
    elsewhere without editing it; ``base_url`` and ``model`` win over them.
    ``embedding_model`` names the server's model for :meth:`LanguageModel.embed`
    (None: the model makes no embeddings); the offline model always embeds with
    its own hash and ignores it, so that a dry run of a config written for a
    server keeps working.
    """
    name = (kind or "").strip().lower()
    if name == "offline":
        return OfflineModel()
    if name == "openai":
        return OpenAICompatibleModel(
            base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            model or os.environ.get("CHRONOLEDGER_MODEL") or "gpt-4o-mini",
            max_concurrent=max_concurrent, timeout=timeout, max_retries=max_retries, connect_timeout=connect_timeout,
            temperature=temperature, max_tokens=max_tokens, send_seed=send_seed, embedding_model=embedding_model)
    if name == "ollama":
        host = base_url or os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
        if "://" not in host:                  # OLLAMA_HOST is often written host:port
            host = "http://" + host
        return OllamaModel(host, model or os.environ.get("CHRONOLEDGER_MODEL") or "llama3.1",
                           max_concurrent=max_concurrent, timeout=timeout, max_retries=max_retries,
                           connect_timeout=connect_timeout, temperature=temperature, max_tokens=max_tokens,
                           send_seed=send_seed, embedding_model=embedding_model)
    raise ModelError(f"unknown model kind {kind!r}: choose one of {', '.join(MODEL_KINDS)}")
