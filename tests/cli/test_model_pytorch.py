"""Models exported by PyTorch (tests/fixtures/models, made by make_models.py there): registered,
inspected, compared and exported to Triton the way a user's would be."""

import re

from conftest import SOURCE_DIR, run_mlops

FIXTURES = SOURCE_DIR / "tests" / "fixtures" / "models"


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def document(home, *args):
    import json
    return json.loads(ok(run_mlops("--json", *args, cwd=home.project)))


def test_pytorch_exports_register_with_their_signature(home):
    mlp = document(home, "model", "register", "scorer", str(FIXTURES / "mlp.onnx"))
    assert mlp["format"] == "onnx" and mlp["version"] == 1
    signature = mlp["signature"]
    assert signature["inputs"] == [{"name": "features", "type": "float32", "shape": ["batch", 4]}]
    assert signature["outputs"] == [{"name": "probabilities", "type": "float32", "shape": ["batch", 3]}]
    assert signature["opsets"] == [{"domain": "", "version": 13}]
    assert signature["producer"] == "pytorch"
    shown = ok(run_mlops("model", "show", "scorer", cwd=home.project))
    assert re.search(r"input: +features float32 \[batch, 4\]", shown), shown

    cnn = document(home, "model", "register", "vision", str(FIXTURES / "cnn.onnx"))
    assert cnn["signature"]["inputs"] == [{"name": "image", "type": "float32", "shape": ["batch", 1, 8, 8]}]


def test_triton_export_of_a_pytorch_model_matches_its_inputs(home, tmp_path):
    ok(run_mlops("model", "register", "vision", str(FIXTURES / "cnn.onnx"), cwd=home.project))
    ok(run_mlops("model", "alias", "set", "vision", "production", "1", cwd=home.project))
    repository = tmp_path / "repository"
    ok(run_mlops("model", "export", "vision@production", "--format", "triton", str(repository), cwd=home.project))
    assert (repository / "vision" / "1" / "model.onnx").read_bytes() == (FIXTURES / "cnn.onnx").read_bytes()
    config = (repository / "vision" / "config.pbtxt").read_text()
    assert 'name: "vision"' in config and 'platform: "onnxruntime_onnx"' in config and "max_batch_size: 0" in config
    inputs = config[config.index("input ["):config.index("output [")]
    assert re.search(r'name: "image"\s+data_type: TYPE_FP32\s+dims: \[ -1, 1, 8, 8 \]', inputs), config
    outputs = config[config.index("output ["):]
    assert re.search(r'name: "logits"\s+data_type: TYPE_FP32\s+dims: \[ -1, 2 \]', outputs), config
    # A second export of the same version into the same repository is refused, not merged.
    again = run_mlops("model", "export", "vision@1", str(repository), cwd=home.project)
    assert again.returncode == 4 and "exists already" in again.stderr


def test_a_different_architecture_is_not_signature_compatible(home):
    ok(run_mlops("model", "register", "scorer", str(FIXTURES / "mlp.onnx"), cwd=home.project))
    ok(run_mlops("model", "register", "scorer", str(FIXTURES / "cnn.onnx"), cwd=home.project))
    gate = run_mlops("model", "gate", "scorer@2", "--against", "scorer@1", "--signature-compatible", cwd=home.project)
    assert gate.returncode == 6, gate
    assert "input features is gone" in gate.stdout and "input image is new" in gate.stdout
    assert "output probabilities is gone" in gate.stdout
    same = run_mlops("model", "gate", "scorer@1", "--against", "scorer@1", "--signature-compatible", cwd=home.project)
    assert same.returncode == 0 and "PASS signature" in same.stdout


def test_model_card_is_built_from_the_registry(home, tmp_path):
    import json
    from conftest import parse_one_document, validate_document
    ok(run_mlops("model", "register", "scorer", str(FIXTURES / "mlp.onnx"), "--description", "Scores accounts.",
                 "--tag", "intended_use=ranking accounts at risk", "--tag", "limitations=synthetic data only",
                 cwd=home.project))
    card = ok(run_mlops("model", "card", "scorer@1", cwd=home.project))
    assert card.startswith("# scorer (version 1)\n\nScores accounts.\n")
    assert "## Intended use\n\nranking accounts at risk\n" in card
    assert "## Limitations\n\nsynthetic data only\n" in card
    assert "| input | `features` | float32 | [batch, 4] |" in card
    assert "| output | `probabilities` | float32 | [batch, 3] |" in card
    assert "*Registered without a run: no metrics.*" in card
    assert "*Not recorded: register with `--dataset NAME@REF`.*" in card

    out = tmp_path / "CARD.md"
    result = run_mlops("--json", "model", "card", "scorer", "--out", str(out), cwd=home.project)
    document = validate_document(parse_one_document(ok(result)), "model-card")
    assert document["ref"] == "scorer@1" and document["out"] == str(out)
    assert out.read_text() == document["markdown"] == card

    exported = validate_document(parse_one_document(ok(run_mlops("--json", "model", "export", "scorer@1", "--format", "triton",
                                                                 str(tmp_path / "repo"), cwd=home.project))), "model-export")
    assert exported["config"] == str(tmp_path / "repo" / "scorer" / "config.pbtxt")
    unknown = run_mlops("model", "export", "scorer@1", "--format", "torchserve", str(tmp_path / "other"), cwd=home.project)
    assert unknown.returncode == 2 and "triton" in unknown.stderr
    missing = run_mlops("model", "card", "scorer@7", cwd=home.project)
    assert missing.returncode == 3
