"""The toy-world recipe's text side (`generation.toyworld.train`): the embeddings the transformer
trains on are exactly the ones the pipeline gives it at generation, frozen or trained."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from generation.tiny_model import TRAINED_TINY_DIR
from generation.toyworld import train

CAPTIONS = ["a red circle moving left on a white background",
            "acmestyle, A trail shoe for rainy days. set in a city street at night. moving right.", ""]


@pytest.fixture(scope="module")
def pipe():
    from diffusers import WanPipeline

    pipeline = WanPipeline.from_pretrained(TRAINED_TINY_DIR)
    pipeline.tokenizer.model_max_length = 96
    return pipeline


@pytest.fixture(scope="module")
def transformer(pipe):
    return pipe.transformer.eval()


def _pipeline_embeds(pipe, recipe) -> torch.Tensor:
    return train._encode_captions(pipe, CAPTIONS, recipe, torch.device("cpu"))


def _transformer_out(transformer, embeds: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn((len(embeds), transformer.config.in_channels, 3, 8, 8), generator=generator)
    return transformer(hidden_states=latents, timestep=torch.full((len(embeds),), 500.0),
                       encoder_hidden_states=embeds, return_dict=False)[0]


def test_collapsed_padding_attends_exactly_as_the_full_window(pipe, transformer):
    recipe = replace(train.STAGES["platform"])
    full = _pipeline_embeds(pipe, recipe)
    with torch.no_grad():
        expected = _transformer_out(transformer, full)
    text = train.FrozenText(full.clone())
    restore = text.collapse_padding(transformer, torch.device("cpu"))
    try:
        assert text.embeds.shape[1] < full.shape[1]  # the padding really was collapsed
        with torch.no_grad():
            got = _transformer_out(transformer, text(torch.arange(len(CAPTIONS))))
    finally:
        restore()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert text.empty_index == len(CAPTIONS) - 1


def test_a_trained_text_encoder_gives_the_pipelines_embeddings_and_learns(pipe, transformer):
    import copy

    recipe = replace(train.STAGES["platform"], text_lr=1e-3)
    encoder = copy.deepcopy(pipe.text_encoder).eval()
    text = train.TrainedText(encoder, *train._tokenize(pipe, CAPTIONS, recipe))
    restore = text.collapse_padding(transformer, torch.device("cpu"))
    try:
        index = torch.arange(len(CAPTIONS))
        embeds = text(index)
        expected = _pipeline_embeds(pipe, recipe)
        used = embeds.shape[1] - 1
        torch.testing.assert_close(embeds.detach(), expected[:, :used + 1], rtol=1e-5, atol=1e-6)
        assert not expected[:, used + 1:].any()  # what was cut off is the zero padding

        # One optimizer step on the encoder alone moves its weights and the embeddings.
        optimizer = torch.optim.AdamW(text.parameters(), lr=1e-3)
        before = [p.detach().clone() for p in encoder.parameters()]
        _transformer_out(transformer, embeds).pow(2).mean().backward()
        optimizer.step()
        assert any(not torch.equal(b, p) for b, p in zip(before, encoder.parameters()))
        assert not torch.allclose(text(index), embeds)
    finally:
        restore()
    assert not any(p.requires_grad for p in encoder.parameters())  # frozen again for saving and generation
