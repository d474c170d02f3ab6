"""The data set choice shared by the digit plugins: MNIST by default, Fashion-MNIST (same idx format) with
``dataset = "fashion-mnist"`` in the config. The run's provenance, card and evaluation follow that field."""

from __future__ import annotations

import dataclasses

from ..spec import CardInfo

HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist"}


def card_for_dataset(card: CardInfo, dataset: str) -> CardInfo:
    """``card`` (written for the MNIST model) for one trained on ``dataset``: that data set's Hub id and tag, and
    a first line saying that the summary and notes describe the MNIST model."""
    if dataset == "mnist":
        return card
    tags = (*(tag for tag in card.tags if tag != "mnist"), dataset)
    notes = (
        f"These weights were trained on {dataset} (config `dataset`); the summary and the notes below describe "
        f"the model trained on MNIST. {card.notes}"
    )
    return dataclasses.replace(card, datasets=(HUB_DATASETS.get(dataset, dataset),), tags=tags, notes=notes)
