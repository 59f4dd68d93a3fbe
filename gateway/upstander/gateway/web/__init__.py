"""The reporter's web page (`/r/{org}`): server-rendered, bilingual, safe without JavaScript."""

from upstander.gateway.web.branding import public as _branding_public
from upstander.gateway.web.escrow_pages import router as _escrow_pages
from upstander.gateway.web.identified import router as _identified
from upstander.gateway.web.pages import router

router.include_router(_branding_public)  # brand.css and the logo (branding.py)
router.include_router(_identified)  # /r/{org}/sent after an identified report (identified.py)
router.include_router(_escrow_pages)  # the private record and the escrow (escrow_pages.py)

__all__ = ["router"]
