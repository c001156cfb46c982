"""``digit_version``: a version string as a tuple of ints that compares as versions do."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

__all__ = ["digit_version"]

# pre-releases sort before the release they lead to; a plain release has (0, 0) there
_PRE_RANK = {"a": -3, "b": -2, "rc": -1}


def digit_version(version_str: str, length: int = 4) -> tuple[int, ...]:
    """``'2.1.0rc1'`` -> ``(2, 1, 0, 0, -1, 1)``: ``length`` release numbers (zero-padded),
    then a pre-release rank and number (``(0, 0)`` for a release), then, for post-releases,
    the post number. Local parts (``+cu121``) are ignored.

    :param version_str: a PEP 440 version, such as ``torch.__version__``.
    :param length: how many release numbers to keep (at least as many as the version has).
    :raises ValueError: the string is not a version, or has more than ``length`` numbers.
    """
    try:
        version = Version(version_str)
    except InvalidVersion as exc:
        raise ValueError(f"digit_version: {version_str!r} is not a PEP 440 version") from exc
    release = list(version.release)
    if len(release) > length:
        raise ValueError(
            f"digit_version: {version_str!r} has {len(release)} release numbers, more than "
            f"length={length}; pass a larger length"
        )
    digits = release + [0] * (length - len(release))
    if version.pre is not None:
        digits += [_PRE_RANK[version.pre[0]], version.pre[1]]
    elif version.dev is not None:
        digits += [-4, version.dev]  # a dev release comes before its alphas
    else:
        digits += [0, 0]
    if version.post is not None:
        digits.append(version.post)
    return tuple(digits)
