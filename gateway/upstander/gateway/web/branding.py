"""Per-organisation branding of the reporter page, and the origins allowed to frame it.

- An organisation's admin (`org:write`) sets a display name, colours and the origins that may
  frame the page (`PUT /identity/v1/orgs/current/branding`), and uploads a logo
  (`PUT /identity/v1/orgs/current/branding/logo`, multipart, a part `file` of type
  `image/png`). Anyone with
  `org:read` reads them back.
- Colours are `#rrggbb` and must pass WCAG AA contrast (4.5:1, normal text) where the page uses
  them: the accent for links and button text on every light background of the page and under
  white button text; the header text on the header background.
- The logo is stored by the platform (never a link elsewhere): a PNG only (no SVG, no script
  in an image), at most 100 KB and 1024×1024, rebuilt from its critical chunks only (IHDR,
  PLTE, tRNS, IDAT, IEND; every CRC checked), so no text, metadata or trailing bytes survive.
- The page reads them through a stylesheet route (`/r/{org}/brand.css`: CSS custom properties,
  no inline style, so the CSP stays `style-src 'self'`) and the logo route
  (`/r/{org}/brand/logo.png`, `img-src 'self'`).
- Framing: with no origins listed the page keeps `frame-ancestors 'none'` and
  `X-Frame-Options: DENY`; with some, its HTML answers carry `frame-ancestors` those origins
  and no `X-Frame-Options` (the edge's `SecurityHeadersMiddleware` applies it).
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Request, Response, UploadFile
from pydantic import Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.edge.cors import normalise_origin
from upstander.gateway.identity.branding_tables import OrgBranding
from upstander.gateway.models import Org
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import NotFound, PreconditionFailed, ProblemError, problem_responses
from upstander.kit.schemas import RequestModel, ResponseModel
from upstander.kit.scopes import Scope, require_scope

HEX = re.compile(r"^#[0-9a-f]{6}$")
LOGO_MAX_BYTES = 100_000
LOGO_MAX_SIDE = 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEPT_CHUNKS = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")
# The page's own light backgrounds (reporter.css): the accent is text on each of them, and
# the background of buttons with white text.
PAGE_BACKGROUNDS = ("#ffffff", "#eef3f9", "#f6f8fb")
AA_TEXT = 4.5
FRAME_HEADER = "x-upstander-frame-ancestors"  # page → edge, removed there
NO_STORE = {"Cache-Control": "no-store, max-age=0"}

api = make_router(prefix="/identity/v1", tags=["identity"])
public = APIRouter(tags=["reporter page"])
Admin = Annotated[Principal, require_roles(Role.ADMIN)]
Session = Annotated[AsyncSession, Depends(get_session)]
IfMatch = Annotated[str | None, Header(max_length=200)]


class InvalidLogo(ProblemError):
    status, slug, title = 422, "invalid-logo", "Invalid logo"


class LogoTooLarge(ProblemError):
    status, slug, title = 413, "logo-too-large", "Logo too large"


class UnsupportedLogoType(ProblemError):
    status, slug, title = 415, "unsupported-logo-type", "Unsupported logo type"


# ---- colours ---------------------------------------------------------------------------


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two `#rrggbb` colours (1 to 21)."""
    a, b = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _colour(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if not HEX.fullmatch(lowered):
        raise ValueError("a colour is #rrggbb")
    return lowered


# ---- the API ---------------------------------------------------------------------------


class Branding(RequestModel):
    display_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The name the page shows; the organisation's name when empty.",
        examples=["Rivera for Council"],
    )
    accent: str | None = Field(
        default=None,
        description="`#rrggbb` for links, buttons and borders: at least 4.5:1 against the "
        "page's light backgrounds and under white button text.",
        examples=["#5a2d82"],
    )
    header_background: str | None = Field(
        default=None, description="`#rrggbb` behind the organisation's name.", examples=["#5a2d82"]
    )
    header_text: str | None = Field(
        default=None,
        description="`#rrggbb` for the header's text and links: at least 4.5:1 against "
        "`header_background` (both or neither).",
        examples=["#ffffff"],
    )
    frame_ancestors: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Origins (`https://host[:port]`) whose pages may frame the reporter page "
        "(`Content-Security-Policy: frame-ancestors`); none: the page refuses every frame.",
        examples=[["https://rivera.example"]],
    )

    @field_validator("accent", "header_background", "header_text")
    @classmethod
    def _colours(cls, value: str | None) -> str | None:
        return _colour(value)

    @field_validator("frame_ancestors")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalise_origin(origin) for origin in value))

    @model_validator(mode="after")
    def _contrast(self) -> Branding:
        if self.accent is not None:
            worst = min(contrast(self.accent, bg) for bg in (*PAGE_BACKGROUNDS,))
            if worst < AA_TEXT:
                raise ValueError(
                    f"accent {self.accent} has a contrast of {worst:.2f}:1 with the page's "
                    f"backgrounds and white text; WCAG AA needs {AA_TEXT}:1"
                )
        if (self.header_background is None) != (self.header_text is None):
            raise ValueError("header_background and header_text go together")
        if self.header_background is not None and self.header_text is not None:
            ratio = contrast(self.header_background, self.header_text)
            if ratio < AA_TEXT:
                raise ValueError(
                    f"header_text on header_background has a contrast of {ratio:.2f}:1; "
                    f"WCAG AA needs {AA_TEXT}:1"
                )
        return self


class BrandingOut(ResponseModel):
    display_name: str | None = Field(examples=["Rivera for Council"])
    accent: str | None = Field(examples=["#5a2d82"])
    header_background: str | None = Field(examples=["#5a2d82"])
    header_text: str | None = Field(examples=["#ffffff"])
    frame_ancestors: list[str] = Field(examples=[["https://rivera.example"]])
    logo_url: str | None = Field(
        description="Where the page loads the logo from (this gateway), when there is one.",
        examples=["/r/rivera/brand/logo.png"],
    )
    version: int = Field(examples=[2])


def _org_id(principal: Principal) -> Any:
    if principal.org_id is None:
        raise NotFound("No organisation.")
    return principal.org_id


async def _row(session: AsyncSession, org_id: Any) -> OrgBranding | None:
    return await session.get(OrgBranding, org_id)


async def _out(session: AsyncSession, org_id: Any, row: OrgBranding | None) -> BrandingOut:
    slug = await session.scalar(select(Org.slug).where(Org.id == org_id))
    if row is None:
        return BrandingOut(
            display_name=None, accent=None, header_background=None, header_text=None,
            frame_ancestors=[], logo_url=None, version=0,
        )  # fmt: skip
    return BrandingOut(
        display_name=row.display_name,
        accent=row.accent,
        header_background=row.header_background,
        header_text=row.header_text,
        frame_ancestors=list(row.frame_ancestors or []),
        logo_url=f"/r/{slug}/brand/logo.png" if row.logo else None,
        version=row.version,
    )


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def _check_if_match(if_match: str | None, version: int) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    if if_match.strip().removeprefix("W/") != f'"{version}"':
        raise PreconditionFailed("The branding changed since you read it.")


async def _ensure_row(request: Request, session: AsyncSession, org_id: Any) -> OrgBranding:
    row = await _row(session, org_id)
    if row is None:
        row = OrgBranding(
            org_id=org_id, frame_ancestors=[], version=0, updated_at=request.app.state.clock.now()
        )
        session.add(row)
    return row


@api.get(
    "/orgs/current/branding",
    operation_id="get_org_branding",
    dependencies=[require_scope(Scope.ORG_READ)],
    summary="Your organisation's reporter page: name, colours, logo, framing origins",
    response_model=BrandingOut,
    responses=problem_responses(401, 403),
)
async def get_branding(session: Session, principal: Admin, response: Response) -> BrandingOut:
    org_id = _org_id(principal)
    row = await _row(session, org_id)
    _etag(response, row.version if row else 0)
    return await _out(session, org_id, row)


@api.put(
    "/orgs/current/branding",
    operation_id="set_org_branding",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Set your organisation's reporter page name, colours and framing origins",
    description=(
        "Colours are `#rrggbb` and are refused (422) below WCAG AA contrast (4.5:1) where the "
        "page uses them. `frame_ancestors` lists the origins whose pages may embed "
        "`/r/{org}` in a frame; empty keeps `frame-ancestors 'none'`. The logo has its own "
        "route. Send `If-Match` with the ETag to avoid lost updates."
    ),
    response_model=BrandingOut,
    responses=problem_responses(401, 403, 412, 422),
)
async def set_branding(
    request: Request,
    session: Session,
    principal: Admin,
    body: Branding,
    response: Response,
    if_match: IfMatch = None,
) -> BrandingOut:
    org_id = _org_id(principal)
    row = await _ensure_row(request, session, org_id)
    _check_if_match(if_match, row.version or 0)
    row.display_name = body.display_name
    row.accent = body.accent
    row.header_background = body.header_background
    row.header_text = body.header_text
    row.frame_ancestors = list(body.frame_ancestors)
    row.version = (row.version or 0) + 1
    row.updated_at = request.app.state.clock.now()
    await session.flush()
    _etag(response, row.version)
    return await _out(session, org_id, row)


def sanitise_png(data: bytes) -> tuple[bytes, int, int]:
    """The PNG rebuilt from its critical chunks (and tRNS), with its width and height.
    ValueError for anything that is not a well-formed PNG within the limits."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    position, width, height = len(PNG_SIGNATURE), 0, 0
    chunks: list[bytes] = []
    while True:
        if position + 12 > len(data):
            raise ValueError("the PNG is cut short")
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        end = position + 12 + length
        if len(body) != length or end > len(data):
            raise ValueError("the PNG is cut short")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(kind + body) != crc:
            raise ValueError("a PNG chunk is damaged")
        if not chunks and kind != b"IHDR":
            raise ValueError("the PNG does not start with its header")
        if kind == b"IHDR":
            if chunks or length != 13:
                raise ValueError("the PNG header is malformed")
            width, height = struct.unpack(">II", body[:8])
        if kind in KEPT_CHUNKS:
            chunks.append(data[position:end])
        elif kind[0:1].isupper():
            raise ValueError("the PNG has a critical chunk this page does not accept")
        position = end
        if kind == b"IEND":
            break
    if not (0 < width <= LOGO_MAX_SIDE and 0 < height <= LOGO_MAX_SIDE):
        raise ValueError(f"a logo is at most {LOGO_MAX_SIDE}×{LOGO_MAX_SIDE} pixels")
    if not any(c[4:8] == b"IDAT" for c in chunks):
        raise ValueError("the PNG has no image data")
    return PNG_SIGNATURE + b"".join(chunks), width, height


@api.put(
    "/orgs/current/branding/logo",
    operation_id="set_org_branding_logo",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Upload your organisation's logo for the reporter page (PNG, at most 100 KB)",
    description=(
        "Multipart, one part `file` with `Content-Type: image/png`, at most 100 KB and "
        "1024×1024 pixels. SVG and other types are refused (415). The platform keeps only "
        "the image's critical chunks (no text or metadata) and serves it from "
        "`/r/{org}/brand/logo.png`: pages never load a logo from another site."
    ),
    status_code=200,
    response_model=BrandingOut,
    responses=problem_responses(401, 403, 413, 415, 422),
)
async def set_logo(
    request: Request,
    session: Session,
    principal: Admin,
    response: Response,
    file: Annotated[UploadFile, File(description="The logo, a PNG (`image/png`).")],
) -> BrandingOut:
    org_id = _org_id(principal)
    media = (file.content_type or "").split(";")[0].strip().lower()
    if media != "image/png":
        raise UnsupportedLogoType("A logo is a PNG (image/png); SVG and other types are refused.")
    data = await file.read(LOGO_MAX_BYTES + 1)
    if len(data) > LOGO_MAX_BYTES:
        raise LogoTooLarge(f"A logo is at most {LOGO_MAX_BYTES // 1000} KB.")
    try:
        clean, _width, _height = sanitise_png(data)
    except ValueError as exc:
        raise InvalidLogo(str(exc)) from None
    row = await _ensure_row(request, session, org_id)
    row.logo = clean
    row.logo_sha256 = hashlib.sha256(clean).hexdigest()
    row.version = (row.version or 0) + 1
    row.updated_at = request.app.state.clock.now()
    await session.flush()
    _etag(response, row.version)
    return await _out(session, org_id, row)


@api.delete(
    "/orgs/current/branding/logo",
    operation_id="delete_org_branding_logo",
    dependencies=[require_scope(Scope.ORG_WRITE)],
    summary="Remove your organisation's logo from the reporter page",
    response_model=BrandingOut,
    responses=problem_responses(401, 403),
)
async def delete_logo(
    request: Request, session: Session, principal: Admin, response: Response
) -> BrandingOut:
    org_id = _org_id(principal)
    row = await _row(session, org_id)
    if row is not None and row.logo is not None:
        row.logo = None
        row.logo_sha256 = None
        row.version = (row.version or 0) + 1
        row.updated_at = request.app.state.clock.now()
        await session.flush()
    _etag(response, row.version if row else 0)
    return await _out(session, org_id, row)


# ---- what the page reads ---------------------------------------------------------------


@dataclass
class PageBrand:
    display_name: str | None = None
    accent: str | None = None
    header_background: str | None = None
    header_text: str | None = None
    frame_ancestors: list[str] = field(default_factory=list)
    has_logo: bool = False

    @property
    def styled(self) -> bool:
        """Whether the page needs `/r/{org}/brand.css` at all."""
        return bool(self.accent or self.header_background or self.has_logo)


async def page_brand(request: Request, slug: str) -> PageBrand:
    """The branding of the organisation at `slug` (the platform's look when none). Kept on
    `request.state.brand` for the page's templates and headers."""
    brand = PageBrand()
    async with request.app.state.sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    OrgBranding.display_name,
                    OrgBranding.accent,
                    OrgBranding.header_background,
                    OrgBranding.header_text,
                    OrgBranding.frame_ancestors,
                    OrgBranding.logo_sha256,
                )
                .join(Org, Org.id == OrgBranding.org_id)
                .where(Org.slug == slug, Org.active.is_(True))
            )
        ).first()
    if row is not None:
        brand = PageBrand(
            display_name=row.display_name,
            accent=row.accent,
            header_background=row.header_background,
            header_text=row.header_text,
            frame_ancestors=[o for o in (row.frame_ancestors or []) if _safe_origin(o)],
            has_logo=row.logo_sha256 is not None,
        )
    request.state.brand = brand
    return brand


def _safe_origin(origin: str) -> bool:
    try:
        return normalise_origin(origin) == origin
    except ValueError:
        return False


def frame_headers(request: Request) -> dict[str, str]:
    """For an HTML answer: the origins allowed to frame it, for the edge to apply."""
    brand = getattr(request.state, "brand", None)
    if isinstance(brand, PageBrand) and brand.frame_ancestors:
        return {FRAME_HEADER: " ".join(brand.frame_ancestors)}
    return {}


def brand_css(brand: PageBrand, slug: str) -> str:
    lines = []
    if brand.accent:
        lines.append(f":root {{ --accent: {brand.accent}; }}")
    if brand.header_background and brand.header_text:
        lines.append(
            f".site {{ background: {brand.header_background}; color: {brand.header_text}; }}\n"
            f".site a, .site .org-name {{ color: {brand.header_text}; }}"
        )
    if brand.has_logo:
        lines.append(
            f".org-logo {{ display: inline-block; width: 3rem; height: 3rem; margin: 0.5rem "
            f'0.75rem 0.5rem 0; vertical-align: middle; background: url("/r/{slug}/brand/'
            'logo.png") center / contain no-repeat; }'
        )
    return "\n".join(lines) + "\n"


@public.get("/r/{org}/brand.css", include_in_schema=False)
async def brand_stylesheet(request: Request, org: str) -> Response:
    if not re.fullmatch(r"[a-z0-9-]{2,63}", org):
        return Response(status_code=404, headers=NO_STORE)
    brand = await page_brand(request, org)
    return Response(brand_css(brand, org), media_type="text/css; charset=utf-8", headers=NO_STORE)


@public.get("/r/{org}/brand/logo.png", include_in_schema=False)
async def brand_logo(request: Request, org: str) -> Response:
    if not re.fullmatch(r"[a-z0-9-]{2,63}", org):
        return Response(status_code=404, headers=NO_STORE)
    async with request.app.state.sessionmaker() as session:
        logo = await session.scalar(
            select(OrgBranding.logo)
            .join(Org, Org.id == OrgBranding.org_id)
            .where(Org.slug == org, Org.active.is_(True))
        )
    if not logo:
        return Response(status_code=404, headers=NO_STORE)
    return Response(logo, media_type="image/png", headers=NO_STORE)
