"""chronoledger.world.models: embeddings.  The HTTP models against a stub
server on 127.0.0.1 (never the internet): the request each backend sends, the
order of the vectors, batching, retries, and every malformed reply ending in a
ModelError of ours; the offline model's hashed bag of words: deterministic in
every process, and nearer for texts that share words."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
import test_world_models
from test_world_models import record_sleeps, request

from chronoledger.errors import ChronoledgerError
from chronoledger.world import models
from chronoledger.world.models import (
    LanguageModel,
    ModelError,
    OfflineModel,
    OllamaModel,
    OpenAICompatibleModel,
    make_model,
)

# the stub server on 127.0.0.1, and no provider settings from the environment
stub = test_world_models.stub
_clean_env = test_world_models._clean_env

BACKENDS = ("openai", "ollama")


def http_model(backend, stub, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("embedding_model", "embed-test")
    if backend == "openai":
        return OpenAICompatibleModel(stub.url + "/v1", "chat-test", **kw)
    return OllamaModel(stub.url, "chat-test", **kw)


def embed_path(backend):
    return "/v1/embeddings" if backend == "openai" else "/api/embed"


def vector_of(text):
    """What the stub embeds "t<k>" as: a vector that says which text it belongs to."""
    k = int(re.fullmatch(r"t(\d+)", text).group(1))
    return [float(k + 1), 1.0, 0.0]


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def embedding_server(path, body):
    """A stub answer for both protocols; OpenAI's items come back reversed, each with its index."""
    vectors = [vector_of(t) for t in body["input"]]
    if path.endswith("/api/embed"):
        return 200, {"model": body["model"], "embeddings": vectors}, 0
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return 200, {"object": "list", "data": data[::-1], "model": body["model"]}, 0


def reply(backend, vectors):
    """A 200 answer carrying ``vectors`` (in order) in the backend's protocol."""
    if backend == "ollama":
        return 200, {"embeddings": vectors}, 0
    return 200, {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}, 0


# ---------------------------------------------------------------- the interface


def test_a_model_without_embeddings_says_so():
    class Echo(LanguageModel):
        name = "echo"

        def complete(self, requests):
            return ["hi"] * len(requests)

    model = Echo()
    assert model.embedding_model is None
    with pytest.raises(ModelError, match="model echo: does not make embeddings"):
        model.embed(["hello"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_embedding_model_configured_is_a_model_error(stub, backend):
    with http_model(backend, stub, embedding_model=None) as model:
        assert model.embedding_model is None
        with pytest.raises(ModelError) as info:
            model.embed(["hello"])
    assert f"model {model.name}: does not make embeddings" in str(info.value)
    assert "embedding_model" in str(info.value)
    assert not stub.seen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", ["", "  ", 5])
def test_a_bad_embedding_model_option_is_refused_up_front(stub, backend, bad):
    with pytest.raises(ModelError, match="embedding_model must be a model name"):
        http_model(backend, stub, embedding_model=bad)


def test_make_model_passes_the_embedding_model_on(stub):
    with make_model("openai", base_url=stub.url + "/v1", embedding_model="text-embedding-3-small") as model:
        assert model.embedding_model == "text-embedding-3-small"
        assert model.embed_url == stub.url + "/v1/embeddings"
    with make_model("ollama", base_url=stub.url, embedding_model="nomic-embed-text") as model:
        assert model.embedding_model == "nomic-embed-text"
        assert model.embed_url == stub.url + "/api/embed"
    with make_model("ollama", base_url=stub.url) as model:
        assert model.embedding_model is None
    # a dry run of a config written for a server: the offline model embeds with its own hash
    assert make_model("offline", embedding_model="nomic-embed-text").embedding_model == "offline-hash-256"


# ---------------------------------------------------------------- HTTP: the happy path


@pytest.mark.parametrize("backend", BACKENDS)
def test_request_shape_and_order(stub, backend):
    stub.answer = embedding_server
    texts = ["t0", "t1", "t2", "t3"]
    with http_model(backend, stub) as model:
        vectors = model.embed(texts)
    (seen,) = stub.seen
    assert seen["path"] == embed_path(backend)
    assert seen["body"] == {"model": "embed-test", "input": texts}
    assert vectors.dtype == np.float32 and vectors.shape == (4, 3)
    # the OpenAI stub answers in reverse: the rows still follow the texts, by each item's index
    np.testing.assert_allclose(vectors, [unit(vector_of(t)) for t in texts], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


def test_openai_order_follows_the_index_not_the_list(stub):
    stub.script = [(200, {"data": [{"index": 2, "embedding": [0, 0, 1]}, {"index": 0, "embedding": [1, 0, 0]},
                                   {"index": 1, "embedding": [0, 1, 0]}]}, 0)]
    with http_model("openai", stub) as model:
        vectors = model.embed(["a", "b", "c"])
    np.testing.assert_array_equal(vectors, np.eye(3, dtype=np.float32))


def test_openai_items_without_an_index_are_taken_in_order(stub):
    stub.script = [(200, {"data": [{"embedding": [0, 2]}, {"embedding": [3, 0]}]}, 0)]
    with http_model("openai", stub) as model:
        np.testing.assert_array_equal(model.embed(["a", "b"]), [[0, 1], [1, 0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_are_normalised_whatever_the_server_sends(stub, backend):
    stub.script = [reply(backend, [[3, 4], [1e300, 1e300], [-2, 0], [1e-300, 0]])]
    with http_model(backend, stub) as model:
        vectors = model.embed(["a", "b", "c", "d"])
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [2 ** -0.5, 2 ** -0.5], [-1, 0], [1, 0]], rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_of_at_most_256_in_order(stub, backend):
    stub.answer = embedding_server
    texts = [f"t{k}" for k in range(600)]
    with http_model(backend, stub) as model:
        vectors = model.embed(texts)
    assert [len(seen["body"]["input"]) for seen in stub.seen] == [256, 256, 88]
    assert [t for seen in stub.seen for t in seen["body"]["input"]] == texts
    assert all(seen["path"] == embed_path(backend) for seen in stub.seen)
    np.testing.assert_allclose(vectors, [unit(vector_of(t)) for t in texts], rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_texts_no_request(stub, backend):
    with http_model(backend, stub) as model:
        vectors = model.embed([])
    assert vectors.shape == (0, 0) and vectors.dtype == np.float32
    assert not stub.seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_chat_and_embeddings_share_one_model(stub, backend):
    stub.answer = lambda path, body: embedding_server(path, body) if "input" in body else \
        type(stub).answer(stub, path, body)
    with http_model(backend, stub) as model:
        assert model.complete([request()]) == ["echo hello from the stub"]
        assert model.embed(["t1"]).shape == (1, 3)
    assert [seen["path"] for seen in stub.seen] == [("/v1/chat/completions" if backend == "openai" else "/api/chat"),
                                                     embed_path(backend)]
    assert stub.seen[0]["body"]["model"] == "chat-test" and stub.seen[1]["body"]["model"] == "embed-test"


# ---------------------------------------------------------------- HTTP: failures


@pytest.mark.parametrize("backend", BACKENDS)
def test_503_is_retried_then_succeeds(stub, backend, monkeypatch):
    stub.answer = embedding_server
    stub.script = [(503, b"loading model", 0), (429, b"slow down", 0, {"Retry-After": "1"})]
    with http_model(backend, stub, backoff=0.5) as model:
        asked = record_sleeps(monkeypatch, model)
        vectors = model.embed(["t0", "t1"])
    assert len(stub.seen) == 3
    assert all(seen["body"]["input"] == ["t0", "t1"] for seen in stub.seen)
    assert 0.25 <= asked[0] <= 0.5 and asked[1] == 1.0
    np.testing.assert_allclose(vectors, [unit(vector_of("t0")), unit(vector_of("t1"))], rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_400_is_not_retried(stub, backend, monkeypatch):
    stub.script = [(400, {"error": "model 'embed-test' does not support embeddings"}, 0)]
    with http_model(backend, stub, max_retries=5) as model:
        asked = record_sleeps(monkeypatch, model)
        with pytest.raises(ModelError) as info:
            model.embed(["a"])
    assert len(stub.seen) == 1 and asked == []
    message = str(info.value)
    assert stub.url + embed_path(backend) in message
    assert "HTTP 400" in message and "does not support embeddings" in message
    assert "attempt 1 of 6; a 400 is not retried" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_permanent_500_names_the_url_and_the_attempts(stub, backend, monkeypatch):
    stub.script = [(500, b"out of memory", 0)] * 5
    with http_model(backend, stub, max_retries=2) as model:
        record_sleeps(monkeypatch, model)
        with pytest.raises(ModelError) as info:
            model.embed(["a"])
    assert len(stub.seen) == 3
    message = str(info.value)
    assert stub.url + embed_path(backend) in message and "after 3 attempts" in message
    assert "HTTP 500" in message and "out of memory" in message
    assert isinstance(info.value, ChronoledgerError) and info.value.__cause__ is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_batch_fails_the_call(stub, backend):
    stub.answer = embedding_server
    stub.script = [embedding_server(embed_path(backend), {"model": "m", "input": ["t0"] * 256}),
                   (400, b"too long", 0)]
    with http_model(backend, stub) as model, pytest.raises(ModelError, match="too long"):
        model.embed(["t0"] * 300)
    assert len(stub.seen) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_embed_after_close_is_refused(stub, backend):
    model = http_model(backend, stub)
    model.close()
    with pytest.raises(ModelError, match=r"embed\(\) called after close\(\)"):
        model.embed(["a"])
    assert not stub.seen


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("texts, message", [
    ("a sentence", "cannot embed a single str: pass a list of texts"),
    (["a", 3], "cannot embed text 1: it is int, not str"),
    (5, "cannot embed int"),
])
def test_texts_are_checked(stub, backend, texts, message):
    with http_model(backend, stub) as model, pytest.raises(ModelError, match=re.escape(message)):
        model.embed(texts)
    assert not stub.seen


# (reply body for two texts, what the message must say); the vectors, where they are one, in order
MALFORMED = [
    ([[1, 0]], "answered 1 embedding for 2 texts"),
    ([[1, 0], [1, 0], [0, 1]], "answered 3 embeddings for 2 texts"),
    ([[1, 0], [1, 0, 0]], "embeddings of different lengths: 3 numbers for text 1, 2 for the texts before it"),
    ([[1, "0.5"], [1, 0]], 'the embedding of text 0 with the string "0.5" among its numbers'),
    ([[1, 0], [True, 0]], "the embedding of text 1 with true among its numbers"),
    ([[1, 0], [None, 0]], "the embedding of text 1 with null among its numbers"),
    ([[1, 0], [[1], 0]], "the embedding of text 1 with a list of 1 among its numbers"),
    ([[1, 0], None], "the embedding of text 1 as null, not a list of numbers"),
    ([[1, 0], []], "the embedding of text 1 as an empty list, not a list of numbers"),
    ([{"a": 1}, [1, 0]], "the embedding of text 0 as an object, not a list of numbers"),
    ([[1, 0], [0, 0.0]], "the embedding of text 1 as all zeros"),
    ([[1, 0], [10 ** 400, 1]], "the embedding of text 1 with a number too large for a float"),
]
RAW_MALFORMED = [         # bytes the JSON module reads as non-finite floats
    ("[[NaN, 1.0], [1.0, 0.0]]", "the embedding of text 0 with NaN or infinity among its numbers"),
    ("[[1.0, 0.0], [1e999, 0.0]]", "the embedding of text 1 with NaN or infinity among its numbers"),
    ("[[1.0, 0.0], [-Infinity, 0.0]]", "the embedding of text 1 with NaN or infinity among its numbers"),
]


def raw_reply(backend, vectors_json):
    if backend == "ollama":
        return f'{{"embeddings": {vectors_json}}}'.encode()
    items = ", ".join(f'{{"index": {i}, "embedding": {v}}}'
                      for i, v in enumerate(re.findall(r"\[[^\[\]]*\]", vectors_json)))
    return f'{{"data": [{items}]}}'.encode()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vectors, message", MALFORMED)
def test_malformed_vectors_are_model_errors(stub, backend, vectors, message):
    stub.script = [reply(backend, vectors)]
    with http_model(backend, stub) as model, pytest.raises(ModelError) as info:
        model.embed(["a", "b"])
    assert message in str(info.value)
    assert str(info.value).startswith(f"{model.name}: POST {stub.url}{embed_path(backend)} answered")
    assert len(stub.seen) == 1                                # a bad answer is not retried


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("vectors_json, message", RAW_MALFORMED)
def test_non_finite_numbers_are_model_errors(stub, backend, vectors_json, message):
    stub.script = [(200, raw_reply(backend, vectors_json), 0)]
    with http_model(backend, stub) as model, pytest.raises(ModelError, match=re.escape(message)):
        model.embed(["a", "b"])


@pytest.mark.parametrize("backend, payload, message", [
    ("openai", {"error": {"message": "no such model"}}, 'without a "data" list of embedding objects'),
    ("openai", {"data": "nope"}, 'without a "data" list'),
    ("openai", {"data": [[1, 0], [0, 1]]}, 'without a "data" list of embedding objects'),
    ("openai", [1, 2], 'without a "data" list'),
    ("openai", {"data": [{"index": 0, "embedding": [1, 0]}, {"index": 0, "embedding": [0, 1]}]},
     "indices are not 0 to 1 once each: [0, 0]"),
    ("openai", {"data": [{"index": 0, "embedding": [1, 0]}, {"index": 2, "embedding": [0, 1]}]},
     "indices are not 0 to 1 once each: [0, 2]"),
    ("openai", {"data": [{"index": 0, "embedding": [1, 0]}, {"embedding": [0, 1]}]},
     "indices are not 0 to 1 once each: [0, null]"),
    ("openai", {"data": [{"index": False, "embedding": [1, 0]}, {"index": 1, "embedding": [0, 1]}]},
     "indices are not 0 to 1 once each"),
    ("openai", {"data": [{"index": "0", "embedding": [1, 0]}, {"index": 1, "embedding": [0, 1]}]},
     "indices are not 0 to 1 once each"),
    ("openai", {"data": [{"index": 0}, {"index": 1, "embedding": [0, 1]}]},
     "the embedding of text 0 as null, not a list of numbers"),
    ("openai", {"data": [{"index": 0, "embedding": "AACAPwAAAAA="}, {"index": 1, "embedding": [0, 1]}]},
     'the embedding of text 0 as the string "AACAPwAAAAA=", not a list of numbers'),
    ("ollama", {"error": "model not found"}, 'without an "embeddings" list: {"error": "model not found"}'),
    ("ollama", {"embedding": [1, 0]}, 'without an "embeddings" list'),
    ("ollama", {"embeddings": None}, 'without an "embeddings" list'),
    ("ollama", "embeddings", 'without an "embeddings" list'),
    ("ollama", b"<html>not json</html>", "answered with invalid JSON: <html>not json</html>"),
    ("openai", b"", "answered with invalid JSON: (empty body)"),
])
def test_malformed_replies_are_model_errors(stub, backend, payload, message):
    stub.script = [(200, payload, 0)]
    with http_model(backend, stub) as model, pytest.raises(ModelError) as info:
        model.embed(["a", "b"])
    assert message in str(info.value)
    assert f"POST {stub.url}{embed_path(backend)}" in str(info.value)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=4),
                     max_leaves=20)
_openai_like = st.fixed_dictionaries({"data": st.lists(st.fixed_dictionaries(
    {}, optional={"index": st.integers(-1, 3) | _json, "embedding": st.lists(st.floats() | st.integers(), max_size=3)
                  | _json}), max_size=4)})
_ollama_like = st.fixed_dictionaries({"embeddings": st.lists(st.lists(st.floats() | st.integers(), max_size=3)
                                                             | _json, max_size=4)})


@given(backend=st.sampled_from(BACKENDS), reply_json=_json | _openai_like | _ollama_like,
       n=st.integers(1, 3))
def test_any_reply_gives_unit_vectors_or_a_model_error(backend, reply_json, n):
    model = (OpenAICompatibleModel("http://127.0.0.1:9/v1", "m", embedding_model="e", max_retries=0)
             if backend == "openai" else OllamaModel("http://127.0.0.1:9", "m", embedding_model="e", max_retries=0))
    raw = json.dumps(reply_json).encode()
    model._post = lambda body, url=None: (json.loads(raw), raw)
    try:
        vectors = model.embed(["x"] * n)
    except ModelError:
        return
    finally:
        model.close()
    assert vectors.dtype == np.float32 and vectors.shape[0] == n and vectors.shape[1] >= 1
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


# ---------------------------------------------------------------- offline


def test_offline_embeddings_shape_and_norm():
    model = OfflineModel()
    assert model.embedding_model == "offline-hash-256"
    texts = ["I played chess with Ben at the cafe", "", "!!! ...", "Zoë 🐍 مرحبا", "a\ud800b", "x" * 10_000]
    vectors = model.embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert model.embed([]).shape == (0, 256)


def test_offline_text_without_words_gets_a_fixed_unit_vector():
    model = OfflineModel()
    empty, punctuation, blank = model.embed(["", "?! -- ...", " \t\n"])
    np.testing.assert_array_equal(empty, punctuation)
    np.testing.assert_array_equal(empty, blank)
    assert np.linalg.norm(empty) == pytest.approx(1.0)


def test_offline_embedding_is_a_pure_function_of_the_text():
    texts = [f"memory number {i} about chess and jazz" for i in range(50)]
    model = OfflineModel()
    together = model.embed(texts)
    assert np.array_equal(np.vstack([model.embed([t]) for t in texts]), together)
    assert np.array_equal(OfflineModel().embed(texts[::-1]), together[::-1])
    # lower-cased, split on anything that is not a letter or a digit
    a, b = model.embed(["Chess, JAZZ; and gardening!", "chess jazz and  gardening"])
    np.testing.assert_array_equal(a, b)


def test_offline_embedding_is_the_same_in_every_process():
    texts = ["I played chess with Ben at the cafe", "Ana's garden is full of tomatoes", "", "Zoë 🐍"]
    here = OfflineModel().embed(texts).tobytes().hex()
    code = ("import json, sys; from chronoledger.world.models import OfflineModel\n"
            "print(OfflineModel().embed(json.loads(sys.stdin.read())).tobytes().hex())\n")
    for hash_seed in ("0", "12345", "random"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        done = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                              env=env, timeout=60, check=True)
        assert done.stdout.strip() == here


def test_offline_similar_texts_score_higher_than_unrelated_ones():
    query, similar, unrelated = OfflineModel().embed([
        "I played chess with Ben at the cafe this morning",
        "Ben and I played a game of chess at the cafe",
        "The weather report says heavy rain tomorrow evening",
    ])
    assert float(query @ similar) > float(query @ unrelated) + 0.3
    assert float(query @ similar) > 0.5


def test_offline_embedding_ranks_memories_by_shared_words():
    memories = ["Went swimming at the lake with Cy", "Baked bread for the neighbours",
                "Chess club: lost to Ben in the endgame", "Read about jazz history"]
    model = OfflineModel()
    scores = model.embed(memories) @ model.embed(["a chess game with Ben"])[0]
    assert int(np.argmax(scores)) == 2


def test_offline_embed_checks_its_texts():
    with pytest.raises(ModelError, match="model offline: cannot embed a single str"):
        OfflineModel().embed("chess")
    with pytest.raises(ModelError, match="model offline: cannot embed text 0: it is bytes, not str"):
        OfflineModel().embed([b"chess"])


def test_the_batch_size_is_256():
    assert models._EMBED_BATCH == 256


# ---------------------------------------------------------------- a world run that ranks by embeddings


def test_a_world_run_ranks_memories_by_the_servers_embeddings_and_replays(stub, tmp_path):
    """world run --model ollama --embedding-model NAME with memory.relevance: embedding: the memories and
    each request's situation go to /api/embed, chats to /api/chat; the run replays without the server."""
    from _cli import invoke
    from _world_data import ONE_PLACE_CONFIG, write
    from chronoledger.cli import cli
    from chronoledger.world.replay import replay

    counter = iter(range(10 ** 6))

    def answer(path, body):
        if path.endswith("/api/embed"):          # the offline model's vectors, as a server's
            vectors = OfflineModel().embed(body["input"]).tolist()
            return 200, {"model": body["model"], "embeddings": vectors}, 0
        return 200, {"message": {"role": "assistant", "content": f"Line {next(counter)} about chess."},
                     "done": True}, 0
    stub.answer = answer
    cfg = write(tmp_path / "c.yaml", ONE_PLACE_CONFIG + "memory: {relevance: embedding}\n")
    db = f"sqlite:///{tmp_path / 'w.db'}"
    for name in ("Ava", "Ben"):
        assert invoke(cli, ["world", "seed-agent", "--db-url", db, "--name", name, "--interests", "chess:0.9"]
                      ).exit_code == 0
    r = invoke(cli, ["world", "run", "--db-url", db, "--config", str(cfg), "--days", "2", "--model", "ollama",
                     "--model-url", stub.url, "--model-name", "chat-model", "--embedding-model", "embed-model",
                     "--report-format", "none", "--json"])
    assert r.exit_code == 0, r.output
    paths = [s["path"] for s in stub.seen]
    assert "/api/embed" in paths and "/api/chat" in paths
    assert {s["body"]["model"] for s in stub.seen if s["path"] == "/api/embed"} == {"embed-model"}
    stub.seen.clear()
    assert replay(tmp_path / "w-run-1.cmeta").matches and stub.seen == []        # no server asked
    r = invoke(cli, ["world", "run", "--db-url", db, "--config", str(cfg), "--model", "ollama",
                     "--model-url", stub.url, "--model-name", "chat-model", "--report-format", "none"])
    assert r.exit_code == 2 and "makes no embeddings" in r.output
