"""The digit protocol (hub_models.metrics.digits): every number it reports, and what it catches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_digits import DATA, DIGIT_MODELS, needs_data, write_idx

import hub_models
from hub_models.data.mnist import load_mnist
from hub_models.errors import HubModelsError


class _Replayer:
    """Stand-in generators for the protocol: ``decode`` returns given real digits (one per label, or a fixed set)."""

    @staticmethod
    def conditional(images_by_digit: dict[int, torch.Tensor]):
        from hub_models.models.cgan_digits_mlp import CganDigitsMlp

        class Memoriser(CganDigitsMlp):
            # the collapsed conditional GAN: one image per digit, whatever the noise — perfect label accuracy
            def decode(self, latents, label="all"):
                return torch.stack([images_by_digit[int(d)] for d in latents[1]])

        return Memoriser()

    @staticmethod
    def unconditional(images: torch.Tensor):
        from hub_models.models.gan_digits_mlp import GanDigitsMlp

        class Replay(GanDigitsMlp):
            def decode(self, latents, **inputs):
                # a pick from a fixed pool by the latents, near-uniform (the fractional digits of z)
                return images[(latents[:, 0] * 1e6).long() % len(images)]

        return Replay()


def test_evaluating_again_reads_each_sample_once_and_the_real_digits_not_again(tmp_path, monkeypatch):
    """A run that evaluates as it trains measures the same real digits every time: the judge reads them at the
    first evaluation only, and reads each sample once (its features and its label from one pass). The numbers are
    the same either way; another seed picks other training digits for the floor: all are read anew. Another process
    finds them on disk (content-addressed)."""
    from hub_models.metrics import digits
    from hub_models.metrics.digits import digit_metrics
    from hub_models.metrics.mnist_classifier import MnistClassifier

    monkeypatch.setattr(digits, "CACHE", tmp_path / "cache")
    root = write_idx(tmp_path / "mnist")
    read, features = [], MnistClassifier.features
    monkeypatch.setattr(
        MnistClassifier, "features", lambda self, images: read.append(len(images)) or features(self, images)
    )
    model = hub_models.get_model_class("cgan-digits-mlp")()
    first = digit_metrics(model, data_root=root, num_samples=40, conditional=True, chunk=16)
    tests = len(load_mnist(root, "test")["labels"])
    assert sum(read) == tests + 40 + 40, read  # the test digits, the floor's 40 training digits, the 40 samples
    read.clear()
    assert digit_metrics(model, data_root=root, num_samples=40, conditional=True, chunk=16) == first
    assert sum(read) == 40, read
    read.clear()
    digit_metrics(model, data_root=root, num_samples=40, conditional=True, chunk=16, seed=1)
    assert sum(read) == tests + 40 + 40, read
    read.clear()
    monkeypatch.setattr(digits, "_REAL_DIGITS", {})  # as in a new process
    assert digit_metrics(model, data_root=root, num_samples=40, conditional=True, chunk=16) == first
    assert sum(read) == 40, read
    assert len(list((tmp_path / "cache").glob("real-*.safetensors"))) == 2


def test_digit_protocol_reports_every_number_on_a_tiny_data_set(tmp_path):
    from hub_models.metrics.digits import digit_metrics

    root = write_idx(tmp_path / "mnist")
    model = hub_models.get_model_class("cgan-digits-mlp")()
    result = digit_metrics(model, data_root=root, num_samples=40, conditional=True, chunk=16)
    assert result["num_samples"] == 40 and result["samples_per_class"] == 4
    assert sum(result["class_share"].values()) == pytest.approx(1.0, abs=1e-3)
    assert result["class_share_min"] == min(result["class_share"].values())
    assert result["class_share_max"] == max(result["class_share"].values())
    per_class = result["label_accuracy_per_class"]
    assert sorted(per_class) == [str(d) for d in range(10)] and all(0 <= v <= 1 for v in per_class.values())
    assert result["label_accuracy"] == pytest.approx(sum(per_class.values()) / 10, abs=1e-4)
    assert result["classifier_fid"] >= 0 and result["classifier_fid_real_train"] >= 0
    # the reference: the same classifier on the (tiny set's) real test digits, overall and per digit
    from hub_models.metrics.mnist_classifier import load_classifier

    test = load_mnist(root, "test")
    with torch.inference_mode():
        read = load_classifier()(test["images"].float() / 255).argmax(1)
    assert result["label_accuracy_real_test"] == round(float((read == test["labels"]).double().mean()), 5)
    assert sorted(result["label_accuracy_real_test_per_class"]) == sorted(per_class)
    # chunking does not change the numbers: one generator, drawn in order
    again = digit_metrics(model, data_root=root, num_samples=40, conditional=True, chunk=40)
    assert again["label_accuracy_per_class"] == per_class
    assert again["classifier_fid"] == pytest.approx(result["classifier_fid"], rel=1e-6, abs=1e-6)
    with pytest.raises(HubModelsError, match="at least 10"):
        digit_metrics(model, data_root=root, num_samples=5, conditional=True)


@pytest.mark.parametrize("model_id", ["gan-toy2d", "gan-ring8", *DIGIT_MODELS])
def test_evaluate_returns_only_numbers(model_id, tmp_path):
    """evaluate() gives numbers (and per-class tables of numbers); the card writes the words and the command."""
    from hub_models.card import build_card
    from hub_models.spec import is_measurement

    root = write_idx(tmp_path / "mnist")
    model = hub_models.get_model_class(model_id)()
    result = model.evaluate(data_root=root, num_samples=20)
    assert result and {k: v for k, v in result.items() if not is_measurement(v)} == {}
    assert {m.key for m in model.metrics if not m.reference} <= set(result)
    model.metric_values = result
    expected = f"hub-models eval {model_id}" + (" --num-samples 20" if "num_samples" in result else "")
    assert f"Measured with `{expected}`." in str(build_card(model))


def test_a_64px_model_is_also_compared_with_real_digits_resized_like_its_training_data(tmp_path):
    root = write_idx(tmp_path / "mnist")
    model = hub_models.get_model_class("cgan-digits")()
    result = model.evaluate(data_root=root, num_samples=20)
    assert {"classifier_fid_real_train_resized", "classifier_fid_over_resized_floor"} <= set(result)
    assert result["classifier_fid_over_resized_floor"] == pytest.approx(
        result["classifier_fid"] / result["classifier_fid_real_train_resized"], rel=2e-3, abs=1e-3
    )
    keys = {m.key for m in model.metrics}
    assert "classifier_fid_real_train_resized" in keys and "label_accuracy_per_class" in keys


@needs_data
def test_protocol_catches_a_collapsed_generator_that_label_accuracy_alone_passes():
    """A generator drawing one image per digit passes label accuracy; FD and shares fail it."""
    test = load_mnist(Path(DATA) / "mnist", "test")
    first = {d: test["images"][int((test["labels"] == d).nonzero()[0])].float() / 255 for d in range(10)}
    memoriser = _Replayer.conditional(first)
    result = memoriser.evaluate(data_root=Path(DATA) / "mnist", num_samples=500)
    assert result["label_accuracy"] >= 0.9  # the classifier reads the real digits right
    assert result["label_accuracy_real_test"] == 0.9939  # the judge's own test accuracy (its card: 99.39%)
    assert result["classifier_fid_over_floor"] > 10, result  # yet the samples are nothing like the test digits
    # an unconditional generator of ones only: its class shares say so
    ones = test["images"][test["labels"] == 1][:50].float() / 255
    result = _Replayer.unconditional(ones).evaluate(data_root=Path(DATA) / "mnist", num_samples=500)
    assert result["class_share"]["1"] > 0.9 and result["class_share_min"] == 0.0


@needs_data
def test_real_digits_score_at_the_floor():
    """Replaying real *training* digits gives a distance close to the floor and the real class shares."""
    train = load_mnist(Path(DATA) / "mnist", "train")["images"].float() / 255
    result = _Replayer.unconditional(train).evaluate(data_root=Path(DATA) / "mnist", num_samples=2000)
    assert result["classifier_fid_over_floor"] < 1.6, result
    assert result["class_share_min"] > 0.07 and result["class_share_max"] < 0.13
