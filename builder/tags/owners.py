"""Which ref a tag belongs to when a sanitised tag collides with another ref's.

A ref name that is not a valid Docker tag is made one (`feature/x` -> `feature-x`,
`-main` -> `main`), so two refs can end up with the same tag. Left alone, anyone who may
push a branch could overwrite the image of a protected one (`-main` -> `main`). The tag
ledger therefore records which ref each tag was pushed for and whether its name was
sanitised; on a collision an exact name always wins over a sanitised one, and between two
sanitised names the first one keeps the tag. That holds whatever order the pushes come in.

Pure: the caller holds the tag's lock and reads its holder from the ledger.
"""

from __future__ import annotations

from builder.tags.order import TagHolder


def refusal(tag: str, ref: str, sanitised: bool, holder: TagHolder | None) -> str | None:
    """Why a build of `ref` may not push `tag`, or None. `sanitised`: this build's `tag`
    was made valid from another name. A holder that recorded no ref (pushed before the
    ledger recorded refs) is not taken as a collision."""
    if not sanitised or holder is None or not holder.ref or holder.ref == ref:
        return None
    how = "also a sanitised name" if holder.sanitised else "its exact name"
    return (
        f"tag {tag!r} is the sanitised name of {ref}, and it already belongs to {holder.ref} "
        f"({how}; build {holder.build_id}): refusing to push it for {ref}. "
        "Give this ref a tag of its own (a `flavor:` prefix, or another template)"
    )


def takes_over(ref: str, sanitised: bool, holder: TagHolder | None) -> bool:
    """True when this build's exact tag name replaces another ref's sanitised one,
    whatever their order in history: the exact name owns the tag."""
    return (
        not sanitised
        and holder is not None
        and holder.sanitised
        and bool(holder.ref)
        and holder.ref != ref
    )
