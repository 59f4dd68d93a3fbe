"""The reporter's web page (`/r/{org}`): server-rendered, bilingual, safe without JavaScript."""

from upstander.gateway.web.pages import router

__all__ = ["router"]
