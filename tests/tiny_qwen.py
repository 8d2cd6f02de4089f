"""A tiny random-weight Qwen3-TTS checkpoint in the real on-disk layout.

No model hub is reachable from the tests, so they build their own checkpoint:
the same files a real ``Qwen/Qwen3-TTS-12Hz-*`` snapshot has, with the same
special ids (codec EOS 2150, the CustomVoice speakers and their ids, the
language ids), but some four hundred times fewer weights (4.5 M). It loads through the
very call production makes::

    Qwen3TTSModel.from_pretrained(dest, device_map="cpu", dtype=torch.float32,
                                  attn_implementation="sdpa")

Layout written under ``dest``::

    config.json                  model_type qwen3_tts (talker + code predictor + speaker encoder)
    model.safetensors
    generation_config.json       qwen_tts reads its sampling defaults from here (required)
    tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, ...  (Qwen2 byte-level BPE)
    speech_tokenizer/config.json               model_type qwen3_tts_tokenizer_12hz
    speech_tokenizer/model.safetensors
    speech_tokenizer/preprocessor_config.json  EncodecFeatureExtractor, 24 kHz mono

What a random model needs to behave like a speaking one:

* The codec codebooks (``embedding_sum``) start as zeros and the vocoder's
  convolutions start tiny, which decodes to silence; both are re-drawn here.
* A random talker almost never picks the codec EOS token. Here the codec head
  reads a single channel of the final hidden state, which every input embedding
  pushes positive, so the head ranks a fixed list of codec tokens the same way
  at every step, with EOS at rank ``_EOS_RANK``. With greedy decoding the
  repetition penalty that qwen_tts always applies (1.05 unless told otherwise)
  demotes each token once it was spoken, so generation walks down the list and
  stops after ``_EOS_RANK - 1`` frames; with sampling it stops after a few dozen
  frames at most. The code predictor (the other 15 codebooks) stays random and
  follows the talker's full hidden state, so the audio still depends on the
  text, the speaker and the rest of the batch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

# The real CustomVoice checkpoints' talker ids (config.json of Qwen3-TTS-12Hz-1.7B-CustomVoice).
SPEAKER_IDS = {
    "serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
    "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878,
}
SPEAKER_DIALECTS: dict[str, str | bool] = {
    **{name: False for name in SPEAKER_IDS},
    "eric": "sichuan_dialect",
    "dylan": "beijing_dialect",
}
LANGUAGE_IDS = {
    "chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
    "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069,
    "beijing_dialect": 2074, "sichuan_dialect": 2062,
}
CODEC = {
    "codec_pad_id": 2148, "codec_bos_id": 2149, "codec_eos_token_id": 2150,
    "codec_think_id": 2154, "codec_nothink_id": 2155,
    "codec_think_bos_id": 2156, "codec_think_eos_id": 2157,
}
CODEC_VOCAB = 3072  # the talker's codec vocabulary; qwen_tts suppresses the top 1024 ids but EOS
CODEBOOK_SIZE = 2048
NUM_CODE_GROUPS = 16
SAMPLE_RATE = 24000
FRAME_SAMPLES = 1920  # 24 kHz / 12.5 Hz

# Text tokenizer: 256 byte tokens, the merges that make "assistant" one token, then specials.
_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>"]
_MERGED_WORDS = ("assistant", "user", "system")
_TEXT_VOCAB_ENTRIES = 100_352  # > 100_000, see _write_text_tokenizer
_TEXT_EMBEDDINGS = 512  # rows of the talker's text embedding: every id the tokenizer can emit

TALKER_HIDDEN = 64
_SIGNAL_CHANNEL = 0  # the hidden channel the codec head reads
_EOS_RANK = 12  # greedy decoding stops after _EOS_RANK - 1 frames
_VOCODER_GAIN = 0.1


@dataclass(frozen=True)
class Shape:
    """The dimensions a checkpoint's config sets, for checkpoints of other shapes than the
    released ones (the defaults are this module's usual tiny model). ``code_groups`` is the
    codes per frame, talker's and speech tokenizer's alike; ``sliding_window`` turns on the
    talker's sliding-window attention."""

    code_groups: int = NUM_CODE_GROUPS
    talker_hidden: int = TALKER_HIDDEN
    talker_layers: int = 2
    talker_heads: int = 4
    talker_kv_heads: int = 2
    talker_head_dim: int = 16
    predictor_hidden: int = 32
    predictor_layers: int = 1
    predictor_heads: int = 2
    predictor_kv_heads: int = 1
    predictor_head_dim: int = 16
    sliding_window: int | None = None

    def mrope_section(self) -> list[int]:
        """Three sections summing to half the talker's head_dim, as qwen_tts's rotary needs."""
        half = self.talker_head_dim // 2
        return [half - 2 * (half // 4), half // 4, half // 4]


def build_tiny_checkpoint(dest: Path, kind: str = "custom_voice", seed: int = 0, shape: Shape | None = None) -> Path:
    """Write a tiny Qwen3-TTS checkpoint of ``kind`` (custom_voice, voice_design or base),
    of ``shape`` (default: the usual tiny dimensions), to ``dest``."""
    import torch

    if kind not in ("custom_voice", "voice_design", "base"):
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    shape = shape or Shape()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    ids = _write_text_tokenizer(dest)
    _write_model(dest, kind, ids, generator, shape)
    _write_speech_tokenizer(dest / "speech_tokenizer", generator, shape.code_groups)
    return dest


# -- text tokenizer -------------------------------------------------------------------


def _write_text_tokenizer(dest: Path) -> dict[str, int]:
    """A Qwen2-style byte-level BPE; returns the special tokens' ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import Qwen2TokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    byte_chars = sorted(alphabet, key=lambda ch: _byte_of(ch))
    vocab = {ch: i for i, ch in enumerate(byte_chars)}
    merges: list[tuple[str, str]] = []
    for word in _MERGED_WORDS:
        left = word[0]
        for ch in word[1:]:
            merged = left + ch
            if merged not in vocab:
                merges.append((left, ch))
                vocab[merged] = len(vocab)
            left = merged
    # Specials get low ids (the talker's text embedding stays small). Then filler
    # entries no merge can ever produce: transformers only runs its tokenizer-regex
    # patch (which qwen_tts asks for with fix_mistral_regex=True) on vocabularies
    # above 100k, as the real 151k one is, and the tests should take that path too.
    for name in _SPECIALS:
        vocab[name] = len(vocab)
    for i in range(_TEXT_VOCAB_ENTRIES - len(vocab)):
        vocab[f"<|filler_{i}|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    # The real Qwen2 layout: a regex split, then byte-level. transformers patches
    # pre_tokenizer[0] when qwen_tts loads with fix_mistral_regex=True, so it must be a Sequence.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(
            Regex(
                r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+"
            ),
            behavior="isolated",
        ),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens(_SPECIALS)
    fast = Qwen2TokenizerFast(
        tokenizer_object=tok,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    fast.save_pretrained(dest)
    ids = {name: tok.token_to_id(name) for name in _SPECIALS}
    # qwen_tts slices the prompt by token counts: 3 tokens of role before the text, 5 after it.
    assert len(tok.encode("<|im_start|>assistant\n").ids) == 3
    assert len(tok.encode("<|im_end|>\n<|im_start|>assistant\n").ids) == 5
    assert max(ids.values()) < _TEXT_EMBEDDINGS
    return ids


def _byte_of(ch: str) -> int:
    """The byte that ByteLevel's alphabet character ``ch`` stands for (GPT-2's bytes_to_unicode)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    code = ord(ch)
    if code in printable:
        return code
    others = [b for b in range(256) if b not in printable]
    return others[code - 256]


# -- the talker model ------------------------------------------------------------------


def _model_config(kind: str, ids: dict[str, int], shape: Shape | None = None) -> dict:
    shape = shape or Shape()
    text_vocab = _TEXT_EMBEDDINGS
    speakers = SPEAKER_IDS if kind == "custom_voice" else {}
    dialects = SPEAKER_DIALECTS if kind == "custom_voice" else {}
    return {
        "architectures": ["Qwen3TTSForConditionalGeneration"],
        "model_type": "qwen3_tts",
        "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        "tts_model_size": "1b7",  # a string: qwen_tts tests `size in "0b6"`
        "tts_model_type": kind,
        "im_start_token_id": ids["<|im_start|>"],
        "im_end_token_id": ids["<|im_end|>"],
        "tts_pad_token_id": ids["<tts_pad>"],
        "tts_bos_token_id": ids["<tts_text_bos>"],
        "tts_eos_token_id": ids["<tts_text_eod>"],
        "speaker_encoder_config": {
            "mel_dim": 128,
            "enc_dim": shape.talker_hidden,  # the x-vector is used as a talker input embedding
            "enc_channels": [32, 32, 32, 32, 96],
            "enc_kernel_sizes": [5, 3, 3, 3, 1],
            "enc_dilations": [1, 2, 3, 4, 1],
            "enc_attention_channels": 16,
            "enc_res2net_scale": 8,
            "enc_se_channels": 16,
            "sample_rate": SAMPLE_RATE,
        },
        "talker_config": {
            "vocab_size": CODEC_VOCAB,
            "hidden_size": shape.talker_hidden,
            "intermediate_size": 2 * shape.talker_hidden,
            "num_hidden_layers": shape.talker_layers,
            "num_attention_heads": shape.talker_heads,
            "num_key_value_heads": shape.talker_kv_heads,
            "head_dim": shape.talker_head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": {"interleaved": True, "mrope_section": shape.mrope_section(), "rope_type": "default"},
            "use_sliding_window": shape.sliding_window is not None,
            **({"sliding_window": shape.sliding_window} if shape.sliding_window is not None else {}),
            "text_vocab_size": text_vocab,
            "text_hidden_size": 32,
            "num_code_groups": shape.code_groups,
            **CODEC,
            "spk_id": speakers,
            "spk_is_dialect": dialects,
            "codec_language_id": LANGUAGE_IDS,
            "code_predictor_config": {
                "vocab_size": CODEBOOK_SIZE,
                "hidden_size": shape.predictor_hidden,
                "intermediate_size": 2 * shape.predictor_hidden,
                "num_hidden_layers": shape.predictor_layers,
                "num_attention_heads": shape.predictor_heads,
                "num_key_value_heads": shape.predictor_kv_heads,
                "head_dim": shape.predictor_head_dim,
                "hidden_act": "silu",
                "max_position_embeddings": 65536,
                "rms_norm_eps": 1e-6,
                "rope_theta": 1000000.0,
                "num_code_groups": shape.code_groups,
            },
        },
    }


def _write_model(dest: Path, kind: str, ids: dict[str, int], generator, shape: Shape) -> None:
    import torch
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    raw = _model_config(kind, ids, shape)
    config = Qwen3TTSConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "model_type")})
    model = Qwen3TTSForConditionalGeneration(config).eval()
    with torch.no_grad():
        # Re-draw every weight from our generator, so a build is reproducible and signals
        # keep unit scale through the layers (the library's 0.02 init fades them out).
        for name, param in model.named_parameters():
            if "embedding" in name:
                param.copy_(torch.randn(param.shape, generator=generator))
            elif param.dim() >= 2:
                fan_in = math.prod(param.shape[1:])
                param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(fan_in))
            elif name.endswith("bias"):
                param.zero_()
        _make_eos_reachable(model, generator)
    model.save_pretrained(dest, safe_serialization=True)
    # save_pretrained cannot serialise the speaker encoder's config (it writes
    # "model_type": "" and other keys its __init__ rejects): write our own.
    config_path = dest / "config.json"
    saved = json.loads(config_path.read_text())
    saved["speaker_encoder_config"] = raw["speaker_encoder_config"]
    config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    # qwen_tts reads its sampling defaults from generation_config.json; these are the
    # official checkpoints' values as public copies of the file show them.
    (dest / "generation_config.json").write_text(json.dumps({
        "do_sample": True,
        "repetition_penalty": 1.05,
        "temperature": 0.9,
        "top_p": 1.0,
        "top_k": 50,
        "subtalker_dosample": True,
        "subtalker_temperature": 0.9,
        "subtalker_top_p": 1.0,
        "subtalker_top_k": 50,
        "max_new_tokens": 8192,
    }, indent=2) + "\n")


def _make_eos_reachable(model, generator) -> None:
    """See the module docstring: a fixed ranking of codec tokens with EOS at _EOS_RANK."""
    import torch

    talker = model.talker
    eos = talker.config.codec_eos_token_id
    # Every talker input is a sum of codec embeddings (one from the talker's table,
    # 15 from the code predictor's) and projected text: push the signal channel up in all.
    talker.model.codec_embedding.weight[:, _SIGNAL_CHANNEL] += 1.0
    for table in talker.code_predictor.model.codec_embedding:
        table.weight[:, _SIGNAL_CHANNEL] += 1.0
    talker.text_projection.linear_fc2.bias[_SIGNAL_CHANNEL] = 3.0
    head = talker.codec_head.weight
    head.zero_()
    ranked = torch.randperm(CODEBOOK_SIZE, generator=generator)[:19].tolist()
    ranked.insert(_EOS_RANK - 1, eos)
    scale = 10.0
    for rank, token in enumerate(ranked):
        head[token, _SIGNAL_CHANNEL] = scale * (1.0 - 0.002 * rank)


# -- the speech tokenizer (codec) --------------------------------------------------------


def _write_speech_tokenizer(dest: Path, generator, code_groups: int = NUM_CODE_GROUPS) -> None:
    import torch
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model
    from transformers import EncodecFeatureExtractor

    config = Qwen3TTSTokenizerV2Config(
        encoder_config={
            "sampling_rate": SAMPLE_RATE,
            "frame_rate": 12.5,
            "hidden_size": 32,
            "num_filters": 4,
            "upsampling_ratios": [8, 6, 5, 4],
            "codebook_size": CODEBOOK_SIZE,
            "codebook_dim": 16,
            "vector_quantization_hidden_dimension": 16,
            "num_quantizers": code_groups,
            "num_semantic_quantizers": 1,
            "upsample_groups": 32,
            "num_hidden_layers": 1,
            "intermediate_size": 64,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "sliding_window": 250,
        },
        decoder_config={
            "codebook_size": CODEBOOK_SIZE,
            "codebook_dim": 16,
            "hidden_size": 32,
            "latent_dim": 32,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_quantizers": code_groups,
            "sliding_window": 72,
            "upsample_rates": [8, 5, 4, 3],
            "upsampling_ratios": [2, 2],
            "decoder_dim": 32,
        },
        encoder_valid_num_quantizers=code_groups,
        input_sample_rate=SAMPLE_RATE,
        output_sample_rate=SAMPLE_RATE,
        decode_upsample_rate=FRAME_SAMPLES,
        encode_downsample_rate=FRAME_SAMPLES,
    )
    model = Qwen3TTSTokenizerV2Model(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "embedding_sum" in name:  # codebooks: zeros decode to silence
                param.copy_(torch.randn(param.shape, generator=generator))
            elif param.dim() == 3:  # convolutions: (out, in/groups, k) or transposed (in, out, k)
                fan_in = param.shape[1] * param.shape[2]
                if "upsample" in name or ".block.1." in name:
                    fan_in = param.shape[0] * param.shape[2] // 2
                param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(max(fan_in, 1)))
            elif param.dim() == 2:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
        # The last convolution makes the waveform; keep it well inside [-1, 1] (the decoder clamps).
        model.decoder.decoder[-1].conv.weight.mul_(_VOCODER_GAIN)
    model.save_pretrained(dest, safe_serialization=True)
    EncodecFeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_side="right", padding_value=0.0, return_attention_mask=True
    ).save_pretrained(dest)
