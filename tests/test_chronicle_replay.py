"""chronicle.replay: a failing step is the step's error; --step finds modules as python -m does."""

import sys

import pytest

from chronoledger.chronicle import load_step, replay
from chronoledger.errors import ConfigError, StepError
from chronoledger.examples import learner
from chronoledger.examples.recording import record_learner


@pytest.fixture(scope="module")
def learner_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("replay") / "learner.cmeta"
    record_learner(p, 40)
    return p


def test_a_step_that_raises_names_the_record_and_keeps_the_exception(learner_file):
    def make_step(config, seed):
        step = learner.make_step(config, seed)

        def run(ts, phase, s):
            if ts == 17:
                raise ValueError("no batch")
            return step(ts, phase, s)
        return run

    with pytest.raises(StepError) as info:
        replay(learner_file, make_step)
    err = info.value
    assert str(err) == "replay: the step raised at record 17 (timestamp 17): ValueError: no batch"
    assert (err.index, err.timestamp) == (17, 17)
    assert isinstance(err.__cause__, ValueError) and isinstance(err, ConfigError)


def test_a_failing_factory_or_result_is_the_steps_error(learner_file):
    def broken_factory(config, seed):
        raise KeyError("learning_rate")

    with pytest.raises(StepError, match=r"the step factory raised KeyError: 'learning_rate'") as info:
        replay(learner_file, broken_factory)
    assert info.value.index is None
    with pytest.raises(StepError, match=r"at record 0 \(timestamp 0\) lacks loss_value and coherence"):
        replay(learner_file, lambda config, seed: (lambda ts, phase, s: {"metrics": {}}))
    with pytest.raises(StepError, match=r"at record 0 \(timestamp 0\) is a list, not a dict"):
        replay(learner_file, lambda config, seed: (lambda ts, phase, s: [1.0, 0.5]))


def test_load_step_looks_in_the_current_folder_first_and_leaves_the_path_alone(tmp_path, monkeypatch):
    (tmp_path / "stepmod_here.py").write_text("import stepmod_helper\nmake = stepmod_helper.make\n")
    (tmp_path / "stepmod_helper.py").write_text("def make(config, seed):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    factory = load_step("stepmod_here:make")
    assert factory.__module__ == "stepmod_helper" and sys.path == before
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "file_step.py").write_text("import file_helper\nmake = file_helper.make\n")
    (sub / "file_helper.py").write_text("def make(config, seed):\n    return None\n")
    assert callable(load_step("sub/file_step.py:make")) and sys.path == before     # its own folder, for its import
    with pytest.raises(ConfigError, match="cannot import 'no_such_step_module'"):
        load_step("no_such_step_module:make")
    with pytest.raises(ConfigError, match="has no callable 'nope'"):
        load_step("stepmod_here:nope")
