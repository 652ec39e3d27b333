"""chronoledger.world.models: the offline model's determinism, persona and
variety, and the HTTP models against a stub server on 127.0.0.1 (never the
internet): request bodies, keys, concurrency, retries, timeouts and errors."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chronoledger.errors import ChronoledgerError
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
        self.script: list[tuple] = []      # (status, body, delay) answers, used first
        self.delay = 0.0                   # for the default echo answer
        self.in_flight = 0
        self.max_in_flight = 0

    def answer(self, path: str, body) -> tuple:
        user = next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
        marker = re.search(r"<<\d+>>", user)
        content = f"echo {marker.group(0) if marker else 'hello'} from the stub"
        if path.endswith("/api/chat"):
            return 200, {"model": body.get("model"), "message": {"role": "assistant", "content": content},
                         "done": True}, self.delay
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}, self.delay


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        stub: _Stub = self.server.stub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        with stub.lock:
            stub.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                              "body": body})
            stub.in_flight += 1
            stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
            action = stub.script.pop(0) if stub.script else None
        try:
            status, payload, delay = action or stub.answer(self.path, body)
            if delay:
                time.sleep(delay)
        finally:
            with stub.lock:            # before answering, so a client's next request never overlaps it
                stub.in_flight -= 1
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
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
    assert body["temperature"] == 0.7
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
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
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


# ---------------------------------------------------------------- Ollama


def test_ollama_happy_path(stub):
    with OllamaModel(stub.url, "llama-test", temperature=0.3, max_concurrent=3) as model:
        assert model.name == "ollama:llama-test"
        texts = model.complete([request(seed=i, topic=f"t <<{i}>>") for i in range(4)])
    assert texts == [f"echo <<{i}>> from the stub" for i in range(4)]
    body = stub.seen[0]["body"]
    assert stub.seen[0]["path"] == "/api/chat"
    assert body["model"] == "llama-test" and body["stream"] is False
    assert body["options"] == {"temperature": 0.3}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


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
