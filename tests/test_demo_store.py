"""The demo's model store and model work, without a server: how a grid is decoded (whole or in parallel slices)
and how an unavailable model is explained."""

from __future__ import annotations

from conftest import set_hf_offline

import hub_models


def decoded_slices(monkeypatch, model, count: int = 100) -> tuple[list[int], object]:
    """The batch sizes ``model`` decodes ``count`` digits in through gpu_work.generate_sliced on a 4-core CPU
    with one torch thread per request (as launch() sets it), and the samples."""
    import torch

    from hub_models.app import gpu_work

    sizes: list[int] = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda latents, **kw: sizes.append(len(latents[0])) or decode(latents, **kw))
    monkeypatch.setattr(gpu_work.os, "cpu_count", lambda: 4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        samples = gpu_work.generate_sliced(model, count, 5, label="all")
    finally:
        torch.set_num_threads(threads)
    return sorted(sizes), samples


def test_a_sliced_digit_grid_is_the_models_own_samples(monkeypatch):
    """The 100-digit grid in float32 is decoded in parallel slices on a CPU with idle cores: the same samples as
    model.generate from the same seed, only faster."""
    import torch

    from hub_models.inference import optimize_for_inference

    model = optimize_for_inference(hub_models.load("cgan-digits", device="cpu"), torch.float32)
    whole = model.generate(100, seed=5, label="all")
    sizes, sliced = decoded_slices(monkeypatch, model)
    assert sizes == [33, 33, 34], sizes  # min(4 cores, 100 // 32) = 3 slices
    torch.testing.assert_close(sliced, whole, atol=1 / 255, rtol=0)


def test_a_grid_is_decoded_whole_in_bfloat16_and_while_other_requests_compute(monkeypatch):
    """Slices only where they pay: not in bfloat16 (two cores share one matrix unit: no faster, and they slowed
    the requests beside it) and not while another model call is running (no core is idle then)."""
    import torch

    from hub_models.app import store
    from hub_models.inference import optimize_for_inference

    plain = hub_models.load("cgan-digits", device="cpu")
    assert decoded_slices(monkeypatch, optimize_for_inference(plain, torch.bfloat16))[0] == [100]
    busy = optimize_for_inference(plain, torch.float32)
    monkeypatch.setattr(store, "_running", 2)  # this request and one beside it
    assert decoded_slices(monkeypatch, busy)[0] == [100]
    monkeypatch.setattr(store, "_running", 1)  # this request alone
    assert decoded_slices(monkeypatch, busy)[0] == [33, 33, 34]
    monkeypatch.setattr(store, "_running", 0)
    monkeypatch.setattr(store, "GPU_TASKS", [])
    assert store.gpu(running_now)() == 1 and store.running() == 0  # a model call counts itself while it runs


def running_now() -> int:
    from hub_models.app import store

    return store.running()


def test_a_model_without_weights_is_explained_in_the_demos_own_terms(monkeypatch, tmp_path):
    """A Space operator reads how to give the demo weights with its own knobs (--weights MODEL=REF, the
    HUB_MODELS_WEIGHTS_<ID> variable), not Python's (weights=DIR) nor another command's (--weights DIR)."""
    from huggingface_hub import constants

    from hub_models import weights
    from hub_models.app.store import ModelStore

    set_hf_offline(monkeypatch, True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # nothing in the Hugging Face cache
    monkeypatch.setattr(weights, "has_local_copy", lambda cls: False)  # and no bundled copy
    store = ModelStore()
    for reason in (store.weights_reason("gan-toy2d"), store.status("gan-toy2d")):
        assert reason.startswith("gan-toy2d is not available: ") and "HF_HUB_OFFLINE is set" in reason, reason
        assert "--weights gan-toy2d=DIR" in reason and "HUB_MODELS_WEIGHTS_GAN_TOY2D=DIR" in reason, reason
        assert "pass weights=DIR" not in reason and "--weights DIR" not in reason, reason
