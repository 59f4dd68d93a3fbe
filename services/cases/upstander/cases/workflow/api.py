"""Routes of the case workflow: transitions, severity and priority, allegations and
findings, links. Every route goes through `visible_case` and is audited."""

from __future__ import annotations

import uuid

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.audit.service import record
from upstander.cases.cases.schemas import CaseOut
from upstander.cases.cases.service import visible_case
from upstander.cases.problems import merge_responses, problem_example
from upstander.cases.roles import HANDLERS
from upstander.cases.workflow import service
from upstander.cases.workflow.schemas import (
    AllegationIn,
    AllegationList,
    AllegationOut,
    CaseUpdate,
    FindingIn,
    LinkIn,
    LinkList,
    LinkOut,
    TransitionIn,
    TransitionList,
    TransitionOut,
)
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import NotFound, problem_responses

router = make_router(prefix="/cases/v1", tags=["workflow"])

IF_MATCH = Header(
    None,
    alias="If-Match",
    max_length=200,
    description=(
        'The case\'s ETag (from `get_case`, e.g. `"3"`). Optional; when given and stale the '
        "write is refused with 412."
    ),
)
ETAG_HEADER = {"ETag": {"description": "The case's new version.", "schema": {"type": "string"}}}


TRANSITION_PROBLEMS = merge_responses(
    problem_responses(401, 403, 404, 409, 412, 422),
    {
        409: problem_example(
            409,
            "invalid-transition",
            "A case in new cannot move to closed.",
            current="new",
            allowed=["triage", "referred", "dismissed"],
        ),
        403: problem_example(
            403,
            "separation-of-duties",
            "You wrote a finding on this case; someone else must approve the decision.",
        ),
    },
)


@router.post(
    "/cases/{case_id}/transitions",
    operation_id="create_transition",
    summary="Move a case through its workflow",
    description=(
        "States: `new → triage → investigating → decision → closed`; `referred` (to an "
        "outside body; give `referred_to`) and `dismissed` (give a `reason`) from new, triage "
        "or investigating; `decision → investigating`; reopening (`closed`, `referred` or "
        "`dismissed` → `triage`, with a `reason`).\n\n"
        "Guards: leaving `new` acknowledges the report (the reporter gets a message in their "
        "language; `feedback_by` is counted from now). `investigating` needs an assigned "
        "investigator. `closed` needs a finding on every allegation, an `outcome`, and "
        "feedback sent to the reporter; and whoever wrote a finding cannot close the case "
        "(403 `separation-of-duties`).\n\n"
        "409 `invalid-transition` lists the `allowed` states; 409 `transition-blocked` lists "
        "the `unmet` guards. `If-Match` is optional (412 when stale)."
    ),
    status_code=201,
    response_model=TransitionOut,
    responses={201: {"headers": ETAG_HEADER}, **TRANSITION_PROBLEMS},
)
async def create_transition(
    case_id: uuid.UUID,
    body: TransitionIn,
    request: Request,
    response: Response,
    if_match: str | None = IF_MATCH,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> TransitionOut:
    case = await visible_case(session, principal, case_id, for_update=True)
    now = request.app.state.clock.now()
    created = await service.transition(
        session,
        principal,
        case,
        to=body.to,
        reason=body.reason,
        referred_to=body.referred_to,
        outcome=body.outcome,
        feedback_sent_at=body.feedback_sent_at,
        if_match=if_match,
        vault=request.app.state.vault,
        events=request.app.state.events,
        now=now,
    )
    await record(
        session,
        principal,
        "case.transition",
        at=now,
        case_id=case.id,
        detail={"from": created.from_status.value, "to": created.to_status.value},
    )
    response.headers["ETag"] = f'"{case.version}"'
    return TransitionOut.model_validate(created)


@router.get(
    "/cases/{case_id}/transitions",
    operation_id="list_transitions",
    summary="A case's workflow history",
    description="Every transition of the case, oldest first: who, when, from, to and why.",
    response_model=TransitionList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_transitions(
    case_id: uuid.UUID,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> TransitionList:
    case = await visible_case(session, principal, case_id)
    items = [TransitionOut.model_validate(t) for t in await service.list_transitions(session, case)]
    await record(
        session, principal, "transition.list", at=request.app.state.clock.now(), case_id=case.id
    )
    return TransitionList(items=items)


@router.patch(
    "/cases/{case_id}",
    operation_id="update_case",
    summary="Change a case's severity or priority",
    description=(
        "Send `If-Match` with the ETag of `get_case`; a stale one is refused with 412 "
        "(`stale-version`). Without `If-Match` the write is accepted (last writer wins)."
    ),
    response_model=CaseOut,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(401, 403, 404, 412, 422)},
)
async def update_case(
    case_id: uuid.UUID,
    body: CaseUpdate,
    request: Request,
    response: Response,
    if_match: str | None = IF_MATCH,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> CaseOut:
    case = await visible_case(session, principal, case_id, for_update=True)
    now = request.app.state.clock.now()
    changes = body.model_dump(include=body.model_fields_set, mode="json")
    await service.update_case(session, case, changes=changes, if_match=if_match, now=now)
    await record(session, principal, "case.update", at=now, case_id=case.id, detail=changes)
    response.headers["ETag"] = f'"{case.version}"'
    return CaseOut.model_validate(case)


# ----------------------------------------------------------------------------- allegations


@router.post(
    "/cases/{case_id}/allegations",
    operation_id="create_allegation",
    summary="Record an allegation",
    description=(
        "The description is sealed under the case's key. The subjects are involved people "
        "from then on: the case is hidden from them and everyone above them, and goes to "
        "independent reviewers if one of them is leadership or above a case manager."
    ),
    status_code=201,
    response_model=AllegationOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_allegation(
    case_id: uuid.UUID,
    body: AllegationIn,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> AllegationOut:
    case = await visible_case(session, principal, case_id, for_update=True)
    now = request.app.state.clock.now()
    allegation = await service.add_allegation(
        session,
        principal,
        case,
        category=body.category,
        description=body.description,
        subject_person_ids=body.subject_person_ids,
        vault=request.app.state.vault,
        events=request.app.state.events,
        now=now,
    )
    await record(
        session,
        principal,
        "allegation.create",
        at=now,
        case_id=case.id,
        detail={"allegation_id": str(allegation.id)},
    )
    return AllegationOut.model_validate(allegation)


@router.get(
    "/cases/{case_id}/allegations",
    operation_id="list_allegations",
    summary="A case's allegations and findings",
    response_model=AllegationList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_allegations(
    case_id: uuid.UUID,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> AllegationList:
    case = await visible_case(session, principal, case_id)
    items = [AllegationOut.model_validate(a) for a in await service.list_allegations(session, case)]
    await record(
        session, principal, "allegation.list", at=request.app.state.clock.now(), case_id=case.id
    )
    return AllegationList(items=items)


@router.put(
    "/cases/{case_id}/allegations/{allegation_id}/finding",
    operation_id="set_finding",
    summary="Write the finding on an allegation",
    description=(
        "While the case is `investigating` or in `decision`. The rationale is sealed under "
        "the case's key; the author is recorded, and may not be the one who closes the case."
    ),
    response_model=AllegationOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_finding(
    case_id: uuid.UUID,
    allegation_id: uuid.UUID,
    body: FindingIn,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> AllegationOut:
    case = await visible_case(session, principal, case_id, for_update=True)
    now = request.app.state.clock.now()
    allegation = await service.set_finding(
        session,
        principal,
        case,
        allegation_id,
        finding=body.finding,
        rationale=body.rationale,
        vault=request.app.state.vault,
        now=now,
    )
    await record(
        session,
        principal,
        "finding.set",
        at=now,
        case_id=case.id,
        detail={"allegation_id": str(allegation.id), "finding": body.finding.value},
    )
    return AllegationOut.model_validate(allegation)


# ----------------------------------------------------------------------------- links


@router.post(
    "/cases/{case_id}/links",
    operation_id="create_case_link",
    summary="Link two cases",
    description=(
        "`same_subject` or `retaliation_follow_up`. You must be able to see both cases; a "
        "link shows only to people who can see the other case too."
    ),
    status_code=201,
    response_model=LinkOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_case_link(
    case_id: uuid.UUID,
    body: LinkIn,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> LinkOut:
    case = await visible_case(session, principal, case_id)
    other = await visible_case(session, principal, body.case_id)
    now = request.app.state.clock.now()
    link = await service.link_cases(session, principal, case, other, kind=body.kind, now=now)
    await record(
        session,
        principal,
        "link.create",
        at=now,
        case_id=case.id,
        detail={"linked_case_id": str(other.id), "kind": body.kind.value},
    )
    return LinkOut(
        id=link.id, kind=link.kind, case_id=other.id, number=other.number, created_at=now
    )


@router.get(
    "/cases/{case_id}/links",
    operation_id="list_case_links",
    summary="Cases linked to a case",
    description="Both directions; links to cases hidden from you are left out.",
    response_model=LinkList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_case_links(
    case_id: uuid.UUID,
    request: Request,
    principal: Principal = require_roles(*HANDLERS),
    session: AsyncSession = Depends(get_session),
) -> LinkList:
    case = await visible_case(session, principal, case_id)
    items: list[LinkOut] = []
    for link, other_id in await service.links_of(session, case):
        try:
            other = await visible_case(session, principal, other_id)
        except NotFound:
            continue
        items.append(
            LinkOut(
                id=link.id,
                kind=link.kind,
                case_id=other.id,
                number=other.number,
                created_at=link.created_at,
            )
        )
    await record(session, principal, "link.list", at=request.app.state.clock.now(), case_id=case.id)
    return LinkList(items=items)
