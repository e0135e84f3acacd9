"""The project's own tiny Wan checkpoints: the real `WanPipeline` class with toy dimensions.

- `tiny` (the default model): trained on the toy world by `make tiny-model`
  (`generation/toyworld/train.py`) and committed under `generation/checkpoints/tiny/`. It draws
  the shapes, colours and motions its prompts name, so quality is a number on a CPU.
- `tiny-random`: built here from constructors with random (seeded) weights, the same tokenizer
  and `save_pretrained`, about 0.6 MB, into the model cache. Its videos are noise; it is the
  fastest model that exercises the same loading, LoRA and generation code (plumbing tests, and
  the speed benchmarks' baseline).
- `tiny-random-vace`: the same in a `WanVACEPipeline` (Wan's editing model: a source video and a
  mask in, the masked part made), for the engine's native-condition path.

No model hub is reachable here; both are normal diffusers folders that every code path loads
exactly like a real Wan2.1 checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

from generation.atomic import staged_folder

# Bump when anything below changes the produced files, so cached folders get rebuilt.
BUILDER_VERSION = 1
MARKER_NAME = "tiny_model.json"
TINY_NAME = "tiny"
RANDOM_NAME = "tiny-random"
RANDOM_VACE_NAME = "tiny-random-vace"
TRAINED_TINY_DIR = Path(__file__).resolve().parent / "checkpoints" / "tiny"
# Brand-LoRA settings for the tiny models: they learn in seconds on a CPU. These teach `tiny` a new
# colour from 8 images in about 20 s (benchmarks/quality.py, which uses them too).
TINY_LORA = {"steps": 1200, "rank": 16, "learning_rate": 2e-3}

# Fixed training corpus for the tokenizer: English and Chinese ad words, so both scripts get
# multi-byte merges (byte-level BPE encodes any text anyway; merges only make it shorter).
_CORPUS = (
    "a cinematic video of a product on a table, soft light, brand colours, slow dolly-in shot",
    "a happy family drinking coffee in a bright kitchen, morning sun, smooth tracking shot",
    "sneakers running on a city street at night, neon lights, energetic dynamic motion",
    "a smartphone rotating on a white background, studio lighting, high detail, sharp focus",
    "hiking in the mountains, aerial drone shot, forest green and sky blue, calm flowing motion",
    "blurry, low quality, distorted, watermark, flicker, jitter, static frame, deformed",
    "colour palette of crimson red, navy blue and white; visual style: minimalist, modern",
    "appealing to viewers who love travel, food, fashion, sports, music, gaming and fitness",
    "一杯热咖啡放在木桌上，柔和的晨光，电影感镜头，品牌广告",
    "年轻人在城市街头跑步，霓虹灯，动感十足，运动鞋广告",
    "新款手机在白色背景上旋转，工作室灯光，高清细节",
    "家庭在明亮的厨房里吃早餐，温馨，幸福，慢镜头",
    "山间徒步，航拍镜头，绿色森林和蓝色天空，自然流畅的运动",
    "模糊，低质量，变形，水印，闪烁，静止画面",
)
_VOCAB_SIZE = 512
PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


def build_tiny_model(folder: str | Path, *, seed: int = 0, vace: bool = False) -> Path:
    """Build the tiny Wan pipeline (`vace`: a WanVACEPipeline) into `folder` (unless already there)
    and return the folder.

    Deterministic: the same seed gives byte-identical weights. Idempotent and crash-safe: the
    model is written to a sibling temp folder and renamed into place, so `folder` is either
    absent, complete, or an older complete build.
    """
    folder = Path(folder)

    # 1. Already built by this builder version with this seed: nothing to do.
    if _is_complete(folder, seed=seed, vace=vace):
        return folder

    # 2. Build into a staging sibling folder, renamed into place (generation.atomic). An outdated
    #    build is replaced; a concurrent builder that won the race leaves a complete folder, and
    #    ours is then discarded.
    with staged_folder(folder, keep=lambda existing: _is_complete(existing, seed=seed, vace=vace)) as staging:
        pipe = _build_pipeline(seed=seed, vace=vace)
        pipe.save_pretrained(staging)
        # The marker goes last: its presence means every other file is complete.
        (staging / MARKER_NAME).write_text(
            json.dumps({"builder_version": BUILDER_VERSION, "seed": seed, "vace": vace}, sort_keys=True),
            encoding="utf-8",
        )
    return folder


def resolve_model_path(name_or_path: str, cache_dir: Path) -> Path:
    """"tiny" -> the committed checkpoint trained on the toy world; "tiny-random" -> the
    random-weight model built under `cache_dir`; anything else must be a local diffusers folder."""
    if name_or_path == RANDOM_NAME:
        return build_tiny_model(Path(cache_dir) / RANDOM_NAME)
    if name_or_path == RANDOM_VACE_NAME:
        return build_tiny_model(Path(cache_dir) / RANDOM_VACE_NAME, vace=True)
    if name_or_path == TINY_NAME:
        if not (TRAINED_TINY_DIR / "model_index.json").is_file():
            raise FileNotFoundError(f"{TRAINED_TINY_DIR} has no model_index.json: run `make tiny-model`.")
        return TRAINED_TINY_DIR
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Model {name_or_path!r} is neither {TINY_NAME!r}, {RANDOM_NAME!r} nor an existing local folder; "
            "no model hub is reachable, so download checkpoints onto the worker first."
        )
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"{path} has no model_index.json: it is not a diffusers pipeline folder.")
    return path


def _is_complete(folder: Path, *, seed: int, vace: bool = False) -> bool:
    marker = folder / MARKER_NAME
    if not (marker.is_file() and (folder / "model_index.json").is_file()):
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return (info.get("builder_version") == BUILDER_VERSION and info.get("seed") == seed
            and bool(info.get("vace", False)) == vace)


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=[PAD, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS), trainer=trainer)
    # T5-style: every sequence ends with </s>, as the Wan pipeline's UMT5 tokenizer does.
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, model_max_length=512
    )


def _build_pipeline(*, seed: int, vace: bool = False):
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = _build_tokenizer()
    vocab_size = len(tokenizer)

    # One seed per component, so changing one component's dims does not reshuffle the others.
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=vocab_size,
            d_model=32,  # must equal the transformer's text_dim
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    ).eval()

    # On CPU the VAE decode dominates generation time: keep it as small as Wan's VAE allows.
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=16,  # matches the default latents_mean/latents_std lists
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()

    torch.manual_seed(seed + 2)
    # VACE adds control blocks beside the layers it names; its control input is the source's
    # latents, the masked source's and the mask folded to the latent grid (16 + 16 + 8x8 channels).
    vace_dims = {"vace_layers": [0, 1], "vace_in_channels": 96} if vace else {}
    transformer = (WanVACETransformer3DModel if vace else WanTransformer3DModel)(
        **vace_dims,
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=32,
        ffn_dim=64,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        # The rope table is tiny either way; 1024 (Wan's own) lets tests use any size up to 1920.
        rope_max_seq_len=1024,
    ).eval()

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return (WanVACEPipeline if vace else WanPipeline)(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )
