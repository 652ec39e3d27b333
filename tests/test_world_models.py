"""chronoledger.world.models: the offline model's determinism, persona and
variety, and the HTTP models against a stub server on 127.0.0.1 (never the
internet): request bodies, keys, concurrency, kept-alive connections, retries
(Retry-After, backoff with jitter), timeouts and errors."""

from __future__ import annotations

import email.utils
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronoledger.errors import ChronoledgerError
from chronoledger.world import models
from chronoledger.world.models import (
    MODEL_KINDS,
    ChatRequest,
    LanguageModel,
    ModelError,
    OfflineModel,
    OllamaModel,
    OpenAICompatibleModel,
    make_model,
)

KINDS = ("duo_chat", "group_meeting", "solo_reflection", "scripted")


def request(kind="duo_chat", *, seed=1, round=0, others=("Ben",), topic="chess", interests=("chess", "jazz", "gardening"),
            location="cafe", activity="coffee_break", prompt=None, history=(), speaker="Ana", job="engineer"):
    return ChatRequest(kind=kind, speaker=speaker, bio="Ana builds bridges and plays chess on weekends.", job=job,
                       interests=interests, others=others, location=location, activity=activity, topic=topic,
                       prompt=prompt, round=round, seed=seed, history=history)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHRONOLEDGER_MODEL", "MY_PROVIDER_KEY"):
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------- offline


def test_offline_is_a_language_model():
    model = OfflineModel()
    assert isinstance(model, LanguageModel)
    assert model.name == "offline"
    assert model.complete([]) == []
    model.close()


def test_offline_same_request_same_text_whatever_the_batch():
    reqs = [request(kind, seed=s * 7919 + 3, round=s % 3, others=("Ben", "Cy") if kind == "group_meeting" else ("Ben",))
            for kind in KINDS for s in range(50)]
    first = OfflineModel().complete(reqs)
    other = OfflineModel()
    assert other.complete(list(reversed(reqs))) == list(reversed(first))
    assert [other.complete([r])[0] for r in reqs] == first
    assert other.complete(reqs[::2] + reqs[1::2]) == first[::2] + first[1::2]
    # equal requests built separately give equal texts
    assert OfflineModel().complete([request(seed=42)]) == OfflineModel().complete([request(seed=42)])


def test_offline_does_not_depend_on_hash_randomisation():
    reqs = [request(kind, seed=s, others=("Ben", "Cy")) for kind in KINDS for s in range(20)]
    here = OfflineModel().complete(reqs)
    code = ("import json; from chronoledger.world.models import ChatRequest, OfflineModel\n"
            "reqs = [ChatRequest(*r) for r in json.loads(input())]\n"
            "print(json.dumps(OfflineModel().complete(reqs)))\n")
    payload = json.dumps([[r.kind, r.speaker, r.bio, r.job, list(r.interests), list(r.others), r.location, r.activity,
                           r.topic, r.prompt, r.round, r.seed] for r in reqs])
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        done = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, text=True, env=env,
                              timeout=60, check=True)
        assert json.loads(done.stdout) == here


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("round", [0, 1, 3])
def test_offline_speaks_from_the_persona(kind, round):
    others = () if kind == "solo_reflection" else (("Ben", "Chloé", "Dmitri") if kind == "group_meeting" else ("Ben",))
    reqs = [request(kind, seed=s, round=round, others=others, topic="birdwatching") for s in range(300)]
    texts = OfflineModel().complete(reqs)
    for text in texts:
        assert "birdwatching" in text
        for name in others if kind in ("duo_chat", "group_meeting") else ():
            assert name in text, (name, text)
        if kind == "solo_reflection":                    # a private thought, in the first person
            assert re.search(r"\b(I|I'[a-z]+|[Mm]y|me|mine)\b", text), text
    # the place or the activity shows up in a fair share of them
    assert sum("cafe" in t or "coffee break" in t for t in texts) > 10
    # so do the speaker's other interests, and the job
    assert sum("jazz" in t or "gardening" in t or "chess" in t for t in texts) > 10
    if kind != "group_meeting" or round == 0:
        assert any("an engineer" in t for t in texts)


def test_offline_falls_back_to_interests_without_a_topic():
    texts = OfflineModel().complete([request(seed=s, topic="", interests=("machine_learning", "jazz")) for s in range(100)])
    assert all("machine learning" in t or "jazz" in t for t in texts)


def test_offline_openers_and_replies_differ():
    model = OfflineModel()
    openers = set(model.complete([request(seed=s, round=0) for s in range(500)]))
    replies = set(model.complete([request(seed=s, round=1) for s in range(500)]))
    assert not openers & replies


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("round", [0, 2])
def test_offline_variety(kind, round):
    others = ("Ben", "Cy") if kind == "group_meeting" else ("Ben",)
    texts = OfflineModel().complete([request(kind, seed=s * 0x9E3779B1, round=round, others=others)
                                     for s in range(1000)])
    assert len(set(texts)) > 300


_odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30) | st.sampled_from(
    ["", " ", "\t\n", "{}", "{0}", "%s", "Zoë 🐍", "مرحبا", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "a_b_c", "\u200b", "{o}"])

requests_strategy = st.builds(
    ChatRequest,
    kind=st.sampled_from(KINDS) | _odd_text,
    speaker=_odd_text, bio=_odd_text, job=_odd_text,
    interests=st.lists(_odd_text, max_size=5).map(tuple),
    others=st.lists(_odd_text, max_size=5).map(tuple),
    location=_odd_text,
    activity=st.none() | _odd_text,
    topic=_odd_text,
    prompt=st.none() | _odd_text,
    round=st.integers(-3, 100),
    seed=st.integers(-(2**63), 2**64 - 1),
    history=st.lists(_odd_text, max_size=4).map(tuple),
)


@given(st.lists(requests_strategy, min_size=1, max_size=8))
def test_offline_never_empty(reqs):
    texts = OfflineModel().complete(reqs)
    assert len(texts) == len(reqs)
    for r, text in zip(reqs, texts):
        assert isinstance(text, str) and text.strip()
        assert OfflineModel().complete([r]) == [text]
        messages = r.messages()
        assert [m["role"] for m in messages] == ["system", "user"]
        assert all(m["content"].strip() for m in messages)
        json.dumps(messages)


def test_request_takes_lists_as_tuples():
    r = ChatRequest("duo_chat", "Ana", "", "", ["chess"], ["Ben"], "cafe", None, "chess", None, 0, 5, ["Ben: hi"])
    assert r.interests == ("chess",) and r.others == ("Ben",) and r.history == ("Ben: hi",)
    assert hash(r) == hash(request(seed=5, job="", interests=("chess",), activity=None, history=("Ben: hi",))
                           .__class__(*[getattr(r, f) for f in r.__slots__]))
    assert OfflineModel().complete([r]) == OfflineModel().complete([ChatRequest(
        "duo_chat", "Ana", "", "", ("chess",), ("Ben",), "cafe", None, "chess", None, 0, 5, ("Ben: hi",))])


def test_request_takes_numpy_integers():
    np = pytest.importorskip("numpy")
    seed = 2**64 - 5
    r = ChatRequest("duo_chat", "Ana", "", "", ("chess",), ("Ben",), "cafe", None, "chess", None,
                    np.int64(2), np.uint64(seed))
    assert type(r.seed) is int and r.seed == seed and type(r.round) is int
    assert OfflineModel().complete([r]) == OfflineModel().complete([ChatRequest(
        "duo_chat", "Ana", "", "", ("chess",), ("Ben",), "cafe", None, "chess", None, 2, seed)])


def test_messages_carry_persona_and_situation():
    r = request("duo_chat", round=1, history=("Ben: Did you see the match?", "Ana: Only the end."),
                prompt="What would you change about the office?")
    system, user = r.messages()
    assert system["role"] == "system" and user["role"] == "user"
    for part in ("Ana", "engineer", "builds bridges", "chess", "jazz"):
        assert part in system["content"]
    for part in ("Ben", "cafe", "coffee break", "chess", "What would you change", "Did you see the match?",
                 "one or two sentences", "first person"):
        assert part in user["content"]


# ---------------------------------------------------------------- a stub server


class _Stub:
    """What the server saw, and what it should answer next."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.lock = threading.Lock()
        self.seen: list[dict] = []
        self.script: list[tuple] = []      # (status, body, delay[, headers]) answers, used first; status 0
        self.delay = 0.0                   # hangs up without an answer.  delay: for the default echo answer
        self.in_flight = 0
        self.max_in_flight = 0
        self.open_connections = 0

    def connections(self) -> int:
        """How many TCP connections the requests so far came over."""
        return len({seen["client"] for seen in self.seen})

    def answer(self, path: str, body) -> tuple:
        user = next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
        marker = re.search(r"<<\d+>>", user)
        content = f"echo {marker.group(0) if marker else 'hello'} from the stub"
        if path.endswith("/api/chat"):
            return 200, {"model": body.get("model"), "message": {"role": "assistant", "content": content},
                         "done": True}, self.delay
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}, self.delay


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive, as a real model server does

    def setup(self):
        super().setup()
        with self.server.stub.lock:
            self.server.stub.open_connections += 1

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.stub.lock:
                self.server.stub.open_connections -= 1

    def do_POST(self):
        stub: _Stub = self.server.stub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        with stub.lock:
            stub.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body": body, "client": self.client_address})
            stub.in_flight += 1
            stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
            action = stub.script.pop(0) if stub.script else None
        try:
            status, payload, delay, *more = action or stub.answer(self.path, body)
            if delay:
                time.sleep(delay)
        finally:
            with stub.lock:            # before answering, so a client's next request never overlaps it
                stub.in_flight -= 1
        if status == 0:                        # hang up without a word
            self.close_connection = True
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (more[0] if more else {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass                           # a client that timed out closes the socket under the handler


@pytest.fixture
def stub():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.stub = _Stub(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def openai(stub, **kw):
    kw.setdefault("backoff", 0.01)
    return OpenAICompatibleModel(stub.url + "/v1", "test-model", **kw)


# ---------------------------------------------------------------- OpenAI-compatible


def test_openai_happy_path(stub, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    with openai(stub) as model:
        assert model.name == "openai:test-model"
        assert model.complete([request(topic="chess <<7>>")]) == ["echo <<7>> from the stub"]
    (seen,) = stub.seen
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer sk-test-123"
    assert seen["headers"]["content-type"] == "application/json"
    body = seen["body"]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.7 and body["seed"] == request(topic="chess <<7>>").seed & 0x7FFFFFFF
    assert "max_tokens" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"] == request(topic="chess <<7>>").messages()


def test_openai_local_server_needs_no_key(stub):
    with openai(stub, api_key_env="MY_PROVIDER_KEY") as model:
        assert model.complete([request()]) == ["echo hello from the stub"]
    assert "authorization" not in stub.seen[0]["headers"]


def test_openai_results_in_order_with_bounded_concurrency(stub):
    stub.delay = 0.1
    reqs = [request(seed=i, topic=f"topic <<{i}>>") for i in range(6)]
    with openai(stub, max_concurrent=2) as model:
        start = time.monotonic()
        texts = model.complete(reqs)
        elapsed = time.monotonic() - start
    assert texts == [f"echo <<{i}>> from the stub" for i in range(6)]
    assert len(stub.seen) == 6
    assert stub.max_in_flight <= 2
    assert stub.max_in_flight == 2 and elapsed < 0.55   # it did run two at a time


def test_openai_retries_server_errors(stub):
    stub.script = [(500, b"internal error", 0), (503, b"overloaded", 0)]
    with openai(stub, max_retries=3) as model:
        assert model.complete([request()]) == ["echo hello from the stub"]
    assert len(stub.seen) == 3


def test_openai_retries_429(stub):
    stub.script = [(429, {"error": {"message": "rate limited"}}, 0)]
    with openai(stub) as model:
        assert model.complete([request()]) == ["echo hello from the stub"]
    assert len(stub.seen) == 2


def test_openai_does_not_retry_400(stub):
    stub.script = [(400, {"error": {"message": "unknown parameter: temperatur"}}, 0)]
    with openai(stub) as model, pytest.raises(ModelError) as info:
        model.complete([request()])
    assert len(stub.seen) == 1
    message = str(info.value)
    assert "400" in message and "unknown parameter: temperatur" in message
    assert stub.url + "/v1/chat/completions" in message
    assert isinstance(info.value, ChronoledgerError)


def test_openai_gives_up_after_the_last_attempt(stub):
    stub.script = [(500, b"boom " * 200, 0)] * 3
    with openai(stub, max_retries=2) as model, pytest.raises(ModelError) as info:
        model.complete([request()])
    assert len(stub.seen) == 3
    message = str(info.value)
    assert "3 attempts" in message and "HTTP 500" in message and "boom" in message
    assert len(message) < 600                           # an excerpt, not the whole body


def test_openai_timeout(stub):
    stub.delay = 1.0
    start = time.monotonic()
    with openai(stub, timeout=0.2, max_retries=1) as model, pytest.raises(ModelError) as info:
        model.complete([request()])
    assert time.monotonic() - start < 0.9
    assert "timed out after 0.2 s" in str(info.value) and "2 attempts" in str(info.value)
    assert len(stub.seen) == 2


@pytest.mark.parametrize("payload", [
    {"choices": [{"message": {"role": "assistant", "content": ""}}]},
    {"choices": [{"message": {"role": "assistant", "content": "   "}}]},
    {"choices": [{"message": {"role": "assistant", "content": None}}]},
    {"choices": []},
    {"error": "nope"},
    b"not json at all",
])
def test_openai_empty_or_bad_content(stub, payload):
    stub.script = [(200, payload, 0)]
    with openai(stub) as model, pytest.raises(ModelError, match="content|JSON"):
        model.complete([request()])
    assert len(stub.seen) == 1


def test_openai_one_failure_fails_the_batch(stub):
    stub.script = [(401, b"bad key", 0)]
    with openai(stub, max_concurrent=2) as model, pytest.raises(ModelError, match="401"):
        model.complete([request(seed=i) for i in range(4)])


def test_openai_missing_key_for_a_remote_server(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a request was made")
    monkeypatch.setattr(httpx.Client, "send", no_network)
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        OpenAICompatibleModel("https://api.example.invalid/v1", "gpt-test")
    with pytest.raises(ModelError, match="MY_PROVIDER_KEY"):
        OpenAICompatibleModel("https://api.example.invalid/v1", "gpt-test", api_key_env="MY_PROVIDER_KEY")


def test_openai_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = OpenAICompatibleModel(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0.01, timeout=2)
    with pytest.raises(ModelError, match="connection failed") as info:
        model.complete([request()])
    assert "2 attempts" in str(info.value)


def test_closed_model_refuses_work(stub):
    model = openai(stub)
    model.close()
    with pytest.raises(ModelError, match="close"):
        model.complete([request()])


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"max_retries": -1}, {"max_concurrent": 0}])
def test_bad_options(stub, kw):
    with pytest.raises(ModelError):
        openai(stub, **kw)


# ---------------------------------------------------------------- connections, retries, Retry-After


def record_sleeps(monkeypatch, model) -> list[float]:
    """The pauses the model asks for between attempts, taken instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr(model, "_sleep", asked.append)
    return asked


def test_one_connection_serves_many_requests(stub):
    with openai(stub, max_concurrent=1) as model:
        for i in range(3):
            assert model.complete([request(topic=f"<<{i}>>")]) == [f"echo <<{i}>> from the stub"]
        assert model.complete([request(topic=f"<<{i}>>") for i in range(3, 6)]) == \
            [f"echo <<{i}>> from the stub" for i in range(3, 6)]
        assert len(stub.seen) == 6
        assert stub.connections() == 1
        assert stub.open_connections == 1             # kept alive between the batches
    deadline = time.monotonic() + 10                  # close() hangs up; the server notices soon after
    while stub.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stub.open_connections == 0


def test_concurrent_requests_reuse_their_connections(stub):
    stub.delay = 0.05                                 # so that two requests really are in flight at once
    with OllamaModel(stub.url, "llama-test", max_concurrent=2) as model:
        for batch in range(3):
            model.complete([request(seed=i) for i in range(4)])
    assert len(stub.seen) == 12
    assert stub.connections() <= 2                    # a connection per request would make 12


def test_a_429_waits_as_long_as_retry_after_asks(stub, monkeypatch):
    stub.script = [(429, {"error": {"message": "slow down"}}, 0, {"Retry-After": "1"})]
    with openai(stub, backoff=5) as model:
        asked = record_sleeps(monkeypatch, model)
        assert model.complete([request()]) == ["echo hello from the stub"]
    assert asked == [1.0]
    assert len(stub.seen) == 2


def test_retry_after_as_an_http_date(stub, monkeypatch):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    stub.script = [(503, b"maintenance", 0, {"Retry-After": when})]
    with openai(stub) as model:
        asked = record_sleeps(monkeypatch, model)
        assert model.complete([request()]) == ["echo hello from the stub"]
    (delay,) = asked
    assert 25 < delay <= 30                           # whole seconds in the header, and a little clock


def test_retry_after_is_capped_and_read_with_care(stub, monkeypatch):
    monkeypatch.setattr(models, "_MAX_RETRY_AFTER", 2.5)
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    stub.script = [(429, b"", 0, {"Retry-After": "86400"}), (429, b"", 0, {"Retry-After": past}),
                   (503, b"", 0, {"Retry-After": "soon"})]
    with openai(stub, backoff=0.4, max_retries=3) as model:
        asked = record_sleeps(monkeypatch, model)
        assert model.complete([request()]) == ["echo hello from the stub"]
    assert asked[:2] == [2.5, 0.0]                    # the cap; a date gone by means now
    assert 0.8 <= asked[2] <= 1.6                     # unreadable: the backoff (third step: 0.4 * 2**2, jittered)


def test_503_then_200_succeeds_after_a_jittered_backoff(stub, monkeypatch):
    stub.script = [(503, b"overloaded", 0)]
    with openai(stub, backoff=0.5) as model:
        asked = record_sleeps(monkeypatch, model)
        assert model.complete([request()]) == ["echo hello from the stub"]
    assert len(stub.seen) == 2
    (delay,) = asked
    assert 0.25 <= delay <= 0.5


def test_a_permanent_500_ends_in_a_model_error_after_every_attempt(stub, monkeypatch):
    stub.script = [(500, b"database on fire", 0)] * 10
    with openai(stub, max_retries=3, backoff=1) as model:
        asked = record_sleeps(monkeypatch, model)
        with pytest.raises(ModelError) as info:
            model.complete([request()])
    assert len(stub.seen) == 4
    assert len(asked) == 3                            # between the attempts, not after the last
    assert all(0.5 * 2 ** i <= d <= 2 ** i for i, d in enumerate(asked))
    message = str(info.value)
    assert stub.url + "/v1/chat/completions" in message
    assert "4 attempts" in message and "HTTP 500" in message and "database on fire" in message
    assert isinstance(info.value, ChronoledgerError) and info.value.__cause__ is None


def test_a_400_is_not_retried(stub, monkeypatch):
    stub.script = [(400, {"error": {"message": "bad request"}}, 0, {"Retry-After": "1"})]
    with openai(stub, max_retries=5) as model:
        asked = record_sleeps(monkeypatch, model)
        with pytest.raises(ModelError, match="a 400 is not retried"):
            model.complete([request()])
    assert len(stub.seen) == 1 and asked == []


def test_a_redirect_is_not_followed(stub):
    stub.script = [(308, b"", 0, {"Location": "https://elsewhere.invalid/v1/chat/completions"})]
    with openai(stub) as model, pytest.raises(ModelError, match="redirected to https://elsewhere.invalid"):
        model.complete([request()])
    assert len(stub.seen) == 1


def test_a_hang_up_is_retried_then_reported(stub, monkeypatch):
    stub.script = [(0, b"", 0)]
    with openai(stub) as model:
        assert model.complete([request()]) == ["echo hello from the stub"]
    stub.script = [(0, b"", 0)] * 3
    with openai(stub, max_retries=2) as model, pytest.raises(ModelError) as info:
        model.complete([request()])
    assert "3 attempts" in str(info.value) and "connection failed" in str(info.value)
    assert stub.url in str(info.value)


def test_backoff_grows_is_capped_and_keeps_off_the_global_random(stub, monkeypatch):
    monkeypatch.setattr(models, "_MAX_BACKOFF", 4.0)
    model = openai(stub, backoff=0.5)
    random.seed(1234)
    state = random.getstate()
    draws = {retry: [model._backoff(retry) for _ in range(200)] for retry in (1, 2, 3, 4, 10, 5000)}
    assert random.getstate() == state                 # timing draws nothing from anyone else's generator
    for retry, values in draws.items():
        step = min(0.5 * 2.0 ** min(retry - 1, 60), 4.0)
        assert all(step / 2 <= v <= step for v in values), retry
        assert len(set(values)) > 100                 # jitter, not a fixed schedule
    model.close()


def test_close_stops_the_retries_of_a_batch_in_flight(stub, monkeypatch):
    monkeypatch.setattr(models, "_MAX_BACKOFF", 1000.0)
    stub.script = [(503, b"down", 0)] * 10
    model = openai(stub, backoff=1000, max_retries=5, max_concurrent=2)
    errors = []

    def work():
        try:
            model.complete([request(seed=1), request(seed=2)])
        except ModelError as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(stub.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    closer = threading.Thread(target=model.close, daemon=True)     # the two now wait 500+ s to try again
    closer.start()
    closer.join(60)
    thread.join(60)
    assert not closer.is_alive() and not thread.is_alive()
    assert len(stub.seen) == 2
    (error,) = errors
    assert "closed" in str(error) and "HTTP 503" in str(error)


def test_timeouts_come_from_the_options(stub):
    with openai(stub, timeout=45) as model:
        timeout = model._client.timeout
        assert (timeout.connect, timeout.read, timeout.write) == (10.0, 45.0, 45.0)
    with openai(stub, timeout=2) as model:
        assert (model._client.timeout.connect, model._client.timeout.read) == (2.0, 2.0)
    with openai(stub, timeout=45, connect_timeout=3) as model:
        assert (model._client.timeout.connect, model._client.timeout.read) == (3.0, 45.0)
    model = make_model("ollama", base_url=stub.url, timeout=7, connect_timeout=1.5)
    assert (model._client.timeout.connect, model._client.timeout.read) == (1.5, 7.0)
    model.close()


def test_a_local_server_is_not_sent_through_a_proxy(stub, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")   # nothing listens there
    with openai(stub, max_retries=0) as model:
        assert model.complete([request()]) == ["echo hello from the stub"]


def test_a_remote_server_is_reached_through_the_environment_proxy(stub, monkeypatch):
    # the stub plays the proxy: what it receives is the remote URL, and nothing leaves this machine
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", stub.url)
    monkeypatch.setenv("http_proxy", stub.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAICompatibleModel("http://chronoledger-test.invalid/v1", "m", max_retries=0) as model:
        assert model.complete([request()]) == ["echo hello from the stub"]
    assert stub.seen[0]["path"] == "http://chronoledger-test.invalid/v1/chat/completions"


@pytest.mark.parametrize("key", ["sk-caf\u00e9", "sk-a\nX-Injected: 1"])
def test_a_key_that_cannot_be_a_header_is_refused_up_front(stub, monkeypatch, key):
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(ModelError, match="OPENAI_API_KEY") as info:
        openai(stub)
    assert key not in str(info.value)                 # a secret is never printed


@pytest.mark.parametrize("url", ["http://[::1", "ftp://127.0.0.1/v1", ""])
def test_a_bad_base_url_is_a_model_error(url):
    with pytest.raises(ModelError, match="not an http"):
        OpenAICompatibleModel(url, "m")


def test_no_httpx_exception_escapes(stub, monkeypatch):
    boom = [httpx.DecodingError("bad gzip"), httpx.LocalProtocolError("bad header"), httpx.InvalidURL("bad url"),
            httpx.UnsupportedProtocol("gopher"), RuntimeError("Cannot send a request, as the client has been closed.")]
    model = openai(stub, max_retries=2)
    for exc in boom:
        def send(*args, exc=exc, **kwargs):
            raise exc
        monkeypatch.setattr(model._client, "send", send)
        with pytest.raises(ModelError, match=type(exc).__name__):
            model.complete([request()])
    for exc in (httpx.ReadError("reset"), httpx.WriteTimeout("slow"), httpx.ProxyError("proxy down"),
                httpx.PoolTimeout("pool")):
        calls = []

        def send(*args, exc=exc, calls=calls, **kwargs):
            calls.append(1)
            raise exc
        monkeypatch.setattr(model._client, "send", send)
        record_sleeps(monkeypatch, model)
        with pytest.raises(ModelError, match="3 attempts"):
            model.complete([request()])
        assert len(calls) == 3                        # retried
    model.close()
    assert not stub.seen


def test_retry_after_parsing():
    assert models._retry_after("1") == 1.0
    assert models._retry_after(" 120 ") == 120.0
    assert models._retry_after("0") == 0.0
    assert models._retry_after("-5") == 0.0
    assert models._retry_after(None) is None and models._retry_after("") is None
    assert models._retry_after("nan") is None and models._retry_after("tomorrow") is None
    in_a_minute = models._retry_after(email.utils.formatdate(time.time() + 60, usegmt=True))
    assert in_a_minute is not None and 55 < in_a_minute <= 60
    assert models._retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0



# ---------------------------------------------------------------- Ollama


def test_ollama_happy_path(stub):
    with OllamaModel(stub.url, "llama-test", temperature=0.3, max_concurrent=3) as model:
        assert model.name == "ollama:llama-test"
        texts = model.complete([request(seed=i, topic=f"t <<{i}>>") for i in range(4)])
    assert texts == [f"echo <<{i}>> from the stub" for i in range(4)]
    body = stub.seen[0]["body"]
    assert stub.seen[0]["path"] == "/api/chat"
    assert body["model"] == "llama-test" and body["stream"] is False
    assert body["options"]["temperature"] == 0.3
    assert sorted(seen["body"]["options"]["seed"] for seen in stub.seen) == [0, 1, 2, 3]   # each request's own
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_sampling_settings_reach_the_server(stub):
    with OllamaModel(stub.url, "llama-test", temperature=0.0, max_tokens=64) as model:
        model.complete([request(seed=(1 << 40) + 5)])
    assert stub.seen[-1]["body"]["options"] == {"temperature": 0.0, "num_predict": 64, "seed": 5}
    with OpenAICompatibleModel(stub.url + "/v1", "m", temperature=1.5, max_tokens=9, send_seed=False) as model:
        model.complete([request(seed=3)])
    body = stub.seen[-1]["body"]
    assert (body["temperature"], body["max_tokens"], "seed" in body) == (1.5, 9, False)
    for bad in ({"temperature": 3}, {"max_tokens": 0}, {"max_tokens": True}):
        with pytest.raises(ModelError, match="temperature must be from 0 to 2|max_tokens must be"):
            OllamaModel(stub.url, "llama-test", **bad)


def test_ollama_errors(stub):
    stub.script = [(404, {"error": "model 'llama-test' not found, try pulling it first"}, 0)]
    with OllamaModel(stub.url, "llama-test", backoff=0.01) as model, pytest.raises(ModelError) as info:
        model.complete([request()])
    assert "404" in str(info.value) and "not found" in str(info.value)
    assert len(stub.seen) == 1
    stub.script = [(200, {"message": {"role": "assistant", "content": ""}, "done": True}, 0)]
    with OllamaModel(stub.url, "llama-test") as model, pytest.raises(ModelError, match="content"):
        model.complete([request()])


# ---------------------------------------------------------------- make_model


def test_make_model(stub, monkeypatch):
    assert isinstance(make_model("offline"), OfflineModel)
    assert isinstance(make_model(" Offline "), OfflineModel)

    monkeypatch.setenv("OPENAI_BASE_URL", stub.url + "/v1")
    monkeypatch.setenv("CHRONOLEDGER_MODEL", "env-model")
    model = make_model("openai", max_concurrent=2, timeout=5)
    assert isinstance(model, OpenAICompatibleModel)
    assert model.name == "openai:env-model" and model.max_concurrent == 2 and model.timeout == 5
    assert model.complete([request()]) == ["echo hello from the stub"]
    assert stub.seen[-1]["body"]["model"] == "env-model"
    assert make_model("openai", base_url=stub.url, model="explicit").name == "openai:explicit"

    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        make_model("openai")                           # api.openai.com needs a key

    monkeypatch.delenv("CHRONOLEDGER_MODEL", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    ollama = make_model("ollama")
    assert isinstance(ollama, OllamaModel)
    assert ollama.name == "ollama:llama3.1" and ollama.url == "http://127.0.0.1:11434/api/chat"
    monkeypatch.setenv("OLLAMA_HOST", "10.0.0.5:11500")           # as ollama itself spells it
    monkeypatch.setenv("CHRONOLEDGER_MODEL", "qwen2")
    ollama = make_model("ollama")
    assert ollama.name == "ollama:qwen2" and ollama.url == "http://10.0.0.5:11500/api/chat"
    assert make_model("ollama", base_url="http://h:1", model="m").url == "http://h:1/api/chat"


def test_make_model_unknown_kind():
    with pytest.raises(ModelError) as info:
        make_model("gpt5-turbo-max")
    for kind in MODEL_KINDS:
        assert kind in str(info.value)


# ---------------------------------------------------------------- a world through a server


def _varied(stub):
    """Answer each request with words of its own (a counter and the speaker), as a real model would:
    the same words every time would be one memory, kept once."""
    counter = iter(range(10 ** 6))

    def answer(path, body):
        system = next((m["content"] for m in body.get("messages", []) if m.get("role") == "system"), "")
        who = re.match(r"You are (\w+)", system)
        content = f"Reply {next(counter)} from {who.group(1) if who else 'someone'}, thinking about chess openings."
        if path.endswith("/api/chat"):
            return 200, {"message": {"role": "assistant", "content": content}, "done": True}, 0
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}, 0
    stub.answer = answer


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_a_world_run_sends_memories_relationships_and_the_clock(stub, tmp_path, backend):
    """What the server gets on day two: what the speaker remembers (what the other said on day one, in
    the server's own words), how they stand with each other, family, and the simulated time."""
    from _world_data import ONE_PLACE_CONFIG, rows, seed_family, write
    from chronoledger.world import config as wconfig
    from chronoledger.world import scheduler

    _varied(stub)
    cfg = wconfig.load_config(write(tmp_path / "one.yaml", ONE_PLACE_CONFIG))
    db = tmp_path / "w.db"
    seed_family(db)
    model = openai(stub) if backend == "openai" else OllamaModel(stub.url, "llama-test", backoff=0.01)
    with model:
        scheduler.run(db, cfg, model, scheduler.RunOptions(days=2, seed=5, report_format="none"))
    sent = [s["body"]["messages"] for s in stub.seen]
    path = "/v1/chat/completions" if backend == "openai" else "/api/chat"
    assert {s["path"] for s in stub.seen} == {path}
    day2 = [m for m in sent if "It is Tuesday 6 January 2026" in m[1]["content"]]
    assert day2
    ava = [m for m in day2 if m[0]["content"].startswith("You are Ava")]
    assert ava and all("Your family: spouse: Ben." in m[0]["content"] for m in ava)
    chats = [m for m in ava if "You are talking with Ben" in m[1]["content"]]
    assert chats and all("How you stand with them: Ben is your spouse (close" in m[1]["content"] for m in chats)
    # the memories are Ava's, made of what the server answered for Ben
    remembered = [line[2:] for m in chats for line in m[1]["content"].split("\n") if line.startswith("- ")]
    assert remembered and any(re.search(r'Ben told me at home about chess: "Reply \d+ from Ben', r)
                              for r in remembered)
    stored = {t for (t,) in rows(db, "SELECT text FROM memories WHERE agent_id = 1")}
    assert set(remembered) <= stored
