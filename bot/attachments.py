"""Files that come with a question: images the model sees, text files it reads — pure, no I/O.

The Discord edge downloads what a member attached (within the caps: `plan_downloads`), and hands
the bytes over as `Upload`s; `read_uploads` (CPU-bound: run it in a thread) recognises each one
by its content, never by its name or the content type Discord guessed from the name:

- an image (PNG, JPEG, WebP, GIF: its first frame) is decoded within `MAX_PIXELS` (a
  decompression bomb is refused before it is decoded), turned upright by its EXIF orientation,
  scaled down to what the provider looks at (`fit_for_model`: OpenAI's high detail fits 2048x2048,
  then 768 on the shortest side) and encoded again (PNG, or JPEG for photos without
  transparency), which also drops its metadata (a phone photo's EXIF location). The stored bytes
  are that copy; its SHA-256 names it;
- a text file (UTF-8 with or without BOM, or UTF-16 with a BOM, no NULs, few control characters:
  code, Markdown, JSON, CSV, logs ...) is read as text, cut at `text_max_chars` with a marker the
  model reads;
- anything else is refused with a `Problem` (a catalogue key, the file's name, the limit) that
  the edge tells the member in one sentence; the rest of the question is still answered.

An image's cost in tokens (`bot.tokens.image_tokens`) follows OpenAI's published formulas for
OpenAI model names, and a documented estimate for other servers.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from bot.conversation import Attachment, TextFile
from bot.tokens import fit_for_model, image_tokens

if TYPE_CHECKING:  # Pillow is imported when an image first comes (start-up time and memory)
    from PIL.Image import Image as PILImage

# The largest image decoded, in pixels (a 8000x6000 photo is 48 MP). Larger ones are refused
# before their pixels are decoded: a 50 KB PNG can declare 100,000 x 100,000 pixels.
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 90
# A text file may have this share of control characters (besides tab, newlines, form feed and
# escape) and still be text; binary data that happens to be valid UTF-8 has many more.
MAX_CONTROL_SHARE = 0.01
CUT_MARKER = "\n[… cut here: the file has {total:,} characters; the first {shown:,} are shown]"

ImageType = Literal["image/png", "image/jpeg", "image/webp", "image/gif"]
ProblemKind = Literal[
    "too_large", "turn_too_large", "unsupported", "image_too_large", "unreadable", "download_failed"
]


@dataclass(frozen=True, slots=True)
class Limits:
    """The caps (ATTACHMENT_MAX_BYTES, TURN_ATTACHMENT_MAX_BYTES, TEXT_FILE_MAX_CHARS)."""

    file_bytes: int = 8 * 2**20
    turn_bytes: int = 20 * 2**20
    text_chars: int = 60_000


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as a member uploaded it: its name and bytes (and what Discord called it)."""

    name: str
    data: bytes
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """An image ready to store and send: the normalised bytes, their type, size and digest."""

    name: str
    data: bytes
    media_type: str
    width: int
    height: int
    uploaded_size: int
    sha256: str

    def attachment(self, model: str) -> Attachment:
        """The image's record, charged at `model`'s rate."""
        return Attachment(
            name=self.name,
            kind="image",
            media_type=self.media_type,
            size=self.uploaded_size,
            sha256=self.sha256,
            tokens=image_tokens(model, self.width, self.height),
            width=self.width,
            height=self.height,
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """A file that was left out, and why: `kind` is its catalogue key under `[attachment]`."""

    name: str
    kind: ProblemKind
    limit: int = 0  # bytes (too_large, turn_too_large) or pixels (image_too_large)


@dataclass(frozen=True, slots=True)
class Files:
    """What came with a question: images, text files, and what was left out or cut."""

    images: tuple[Image, ...] = ()
    texts: tuple[TextFile, ...] = ()
    problems: tuple[Problem, ...] = ()
    cut: tuple[str, ...] = ()  # text files cut at the character cap, by name
    text_cap: int = 0

    def __bool__(self) -> bool:
        return bool(self.images or self.texts)

    def attachments(self, model: str) -> tuple[Attachment, ...]:
        """The records stored with the question: images (costed for `model`), then text files."""
        return tuple(image.attachment(model) for image in self.images) + tuple(
            text.attachment() for text in self.texts
        )

    @property
    def blobs(self) -> dict[str, bytes]:
        """The images' bytes by digest, as `TurnRecord.blobs` takes them."""
        return {image.sha256: image.data for image in self.images}

    def merged(self, other: Files) -> Files:
        return Files(
            self.images + other.images,
            self.texts + other.texts,
            self.problems + other.problems,
            self.cut + other.cut,
            max(self.text_cap, other.text_cap),
        )


# -- before downloading --------------------------------------------------------------------


def plan_downloads(
    sizes: Sequence[tuple[str, int]], *, file_cap: int, turn_cap: int
) -> tuple[list[int], list[Problem]]:
    """Which of these files (name, declared size) to download, in order, within the caps.

    A file over `file_cap` bytes is left out; then files are taken in order while their total
    stays within `turn_cap`. Returns the indexes to download and the problems to tell.
    """
    taken: list[int] = []
    problems: list[Problem] = []
    total = 0
    for index, (name, size) in enumerate(sizes):
        if size > file_cap:
            problems.append(Problem(name, "too_large", file_cap))
        elif total + size > turn_cap:
            problems.append(Problem(name, "turn_too_large", turn_cap))
        else:
            taken.append(index)
            total += size
    return taken, problems


# -- reading what was downloaded -------------------------------------------------------------


def read_uploads(uploads: Sequence[Upload], *, text_max_chars: int) -> Files:
    """Recognise each upload by its content (see the module's docstring). CPU-bound."""
    images: list[Image] = []
    texts: list[TextFile] = []
    problems: list[Problem] = []
    cut: list[str] = []
    for upload in uploads:
        kind = image_type(upload.data)
        if kind is not None:
            try:
                images.append(normalise_image(upload, kind))
            except ImageTooLarge:
                problems.append(Problem(upload.name, "image_too_large", MAX_PIXELS))
            except ImageUnreadable:
                problems.append(Problem(upload.name, "unreadable"))
            continue
        text = decode_text(upload.data)
        if text is None:
            problems.append(Problem(upload.name, "unsupported"))
            continue
        if len(text) > text_max_chars:
            cut.append(upload.name)
            text = text[:text_max_chars] + CUT_MARKER.format(total=len(text), shown=text_max_chars)
        texts.append(TextFile(upload.name, text, len(upload.data)))
    return Files(tuple(images), tuple(texts), tuple(problems), tuple(cut), text_max_chars)


def image_type(data: bytes) -> ImageType | None:
    """The image format by its magic bytes, for the formats the models take; else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


class ImageTooLarge(ValueError):
    """More pixels than `MAX_PIXELS`: refused before decoding."""


class ImageUnreadable(ValueError):
    """Not a valid image after all (truncated, corrupt)."""


def normalise_image(upload: Upload, kind: ImageType) -> Image:
    """Decode (bounded), turn upright, scale to what the model sees, encode again."""
    from PIL import Image as PIL
    from PIL import ImageOps, UnidentifiedImageError

    formats = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.DecompressionBombWarning)
            with PIL.open(io.BytesIO(upload.data), formats=[formats[kind]]) as opened:
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise ImageTooLarge(f"{width}x{height} pixels")
                opened.seek(0)  # an animated GIF or WebP: its first frame
                picture: PILImage = ImageOps.exif_transpose(opened)
                picture.load()
    except ImageTooLarge:
        raise
    except (PIL.DecompressionBombWarning, PIL.DecompressionBombError) as exc:
        raise ImageTooLarge(str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageUnreadable(str(exc)) from exc
    size = fit_for_model(*picture.size)
    if size != picture.size:
        picture = picture.resize(size, PIL.Resampling.LANCZOS)
    transparent = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    out = io.BytesIO()
    if kind == "image/jpeg" or (kind == "image/webp" and not transparent):
        if picture.mode != "RGB":
            picture = picture.convert("RGB")
        picture.save(out, "JPEG", quality=JPEG_QUALITY)
        media_type = "image/jpeg"
    else:
        if picture.mode not in ("RGB", "RGBA", "L", "LA"):
            picture = picture.convert("RGBA" if transparent else "RGB")
        picture.save(out, "PNG")
        media_type = "image/png"
    data = out.getvalue()
    return Image(
        name=upload.name,
        data=data,
        media_type=media_type,
        width=picture.width,
        height=picture.height,
        uploaded_size=len(upload.data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


def decode_text(data: bytes) -> str | None:
    """The file's text if it is text (see the module docstring), newlines normalised; or None."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    elif b"\x00" in data:
        return None
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    if "\x00" in text or len(_CONTROL.findall(text)) > MAX_CONTROL_SHARE * max(len(text), 1):
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- servers that take no images -------------------------------------------------------------

# What servers answer (HTTP 400) when a model takes no images: OpenAI ("Invalid content type.
# image_url is only supported by certain models."), vLLM ("... is not a multimodal model"),
# llama.cpp and LM Studio ("image input is not supported", "Model does not support images").
_NO_IMAGES = re.compile(
    r"image_url is only supported|not a multimodal model|does not support (?:image|vision)"
    r"|(?:image|vision|multimodal) (?:input )?(?:is )?not supported|cannot (?:read|process) image"
    r"|unsupported content type|invalid content type",
    re.IGNORECASE,
)


def refuses_images(message: str, param: object = None) -> bool:
    """Whether a server's 400 (its message, and the `param` it names) says: no images here."""
    if isinstance(param, str) and re.search(r"content\b.*\btype|image_url", param):
        return True
    return bool(_NO_IMAGES.search(message))


@dataclass(frozen=True, slots=True)
class VisionPolicy:
    """Which models take images: all but the configured globs and those learned to refuse."""

    text_only: tuple[str, ...] = ()
    learned: set[str] = field(default_factory=set)

    def sees_images(self, model: str) -> bool:
        from fnmatch import fnmatchcase

        if model in self.learned:
            return False
        return not any(fnmatchcase(model, glob) for glob in self.text_only)

    def learn(self, model: str) -> None:
        self.learned.add(model)
