"""py-spy's samples sorted into the parts of a batch's work (made-up samples, no profiler)."""

from __future__ import annotations

from benchmarks.profile import HTTP, TREES, shares

SERVER = "run (uvicorn/server.py:1);GoldenSignals.__call__ (titanic_api/metrics.py:240)"
MODEL = "predict_proba (titanic_api/model.py:80)"
SEND = "GoldenSignals.__call__.<locals>.send_and_note_status (titanic_api/metrics.py:245)"
RAW = "\n".join(
    [
        f"{SERVER};{MODEL};predict_proba (sklearn/ensemble/_gb.py:9) 5",
        f"{SERVER};{MODEL};transform (sklearn/impute/_base.py:1) 2",
        f"{SERVER};ValidatedJSONRequest.json (titanic_api/body.py:34) 2",
        f"{SERVER};{SEND};send (h11_impl.py:1) 1",
        "",
    ]
)


def test_each_sample_counts_for_the_innermost_part_of_the_package_it_is_in() -> None:
    parts, samples = shares(RAW)
    assert samples == 10
    assert parts == {
        TREES: 0.5,
        "the model: building its input, the numeric imputer": 0.2,
        "reading and validating the body (`model_validate_json`)": 0.2,
        HTTP: 0.1,
    }


def test_no_samples_gives_no_shares() -> None:
    assert shares("") == ({}, 0)
