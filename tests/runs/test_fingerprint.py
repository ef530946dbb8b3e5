"""thinkless/runs/fingerprint.py: the one owner of "is this state from the same configuration?"."""

import json

import pytest

from thinkless.runs.fingerprint import check_meta, diff, fingerprint, flatten, model_stamp, show


def test_flatten_diff_and_fingerprint():
    assert flatten({"a": {"b": 1, "c": {}}, "d": [2]}) == {"a.b": 1, "a.c": {}, "d": [2]}
    old, new = {"rl": {"alpha": 1.0, "g": 4}}, {"rl": {"alpha": 0.5}, "seed": 1}
    assert diff(old, new) == ["rl.alpha: 1.0 -> 0.5", "rl.g: 4 -> '(unset)'", "seed: '(unset)' -> 1"]
    assert diff(old, json.loads(json.dumps(old))) == [] and fingerprint(old) == fingerprint({"rl": {"g": 4,
                                                                                                    "alpha": 1.0}})
    assert fingerprint(old) != fingerprint(new)
    assert show([str(i) for i in range(25)], limit=2) == "\n  0\n  1\n  ... and 23 more"


def test_check_meta_records_then_refuses_a_mismatch(tmp_path):
    meta = tmp_path / "gen.meta.json"
    check_meta(meta, {"T": 0.6}, what="x", data_exists=False, hint="h")  # first time: recorded
    check_meta(meta, {"T": 0.6}, what="x", data_exists=True, hint="h")   # same: fine
    with pytest.raises(ValueError, match=r"(?s)different settings.*T: 0.6 -> 1.0.*h"):
        check_meta(meta, {"T": 1.0}, what="x", data_exists=True, hint="h")
    with pytest.raises(ValueError, match="no record"):
        check_meta(tmp_path / "other.json", {"T": 0.6}, what="x", data_exists=True, hint="h")


def test_content_id_sees_new_weights_of_the_same_shapes_and_edited_data(tmp_path):
    from thinkless.runs.fingerprint import content_id

    from ..helpers import save_tiny

    model = save_tiny(tmp_path / "m")
    first = content_id(model)
    assert first == content_id(str(model)) and content_id("org/hub-model") is None
    save_tiny(model, seed=1)  # other weights, identical config, tokenizer and safetensors header
    assert content_id(model) != first
    data = tmp_path / "d.jsonl"
    data.write_text('{"a": 1}\n')
    before = content_id(data)
    data.write_text('{"a": 2}\n')
    assert content_id(data) != before


def test_model_stamp_names_a_folder_by_its_files_and_a_hub_id_by_name(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"12345")
    (model / "tokenizer.json").write_text("{}")  # not the weights: a re-saved tokenizer is the same model
    stamp = model_stamp(model)
    assert stamp["path"] == str(model.resolve())
    assert [f[:2] for f in stamp["files"]] == [["model.safetensors", 5], ["config.json", 2]]
    (model / "tokenizer.json").write_text('{"x": 1}')
    assert model_stamp(model) == stamp
    (model / "model.safetensors").write_bytes(b"123456")  # other weights: another stamp
    assert model_stamp(str(model)) != stamp
    assert model_stamp("org/name") == {"hub": "org/name"}
