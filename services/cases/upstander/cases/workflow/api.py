"""Routes of the case workflow: transitions, severity and priority, allegations and
findings, links. Every route goes through `VisibleCase` / `LockedCase` and is audited."""

from __future__ import annotations

import uuid

from fastapi import Header, Response

from upstander.cases.access import CaseCtx, LockedCase, VisibleCase, case_router
from upstander.cases.cases.schemas import CaseOut
from upstander.cases.cases.service import visible_case
from upstander.cases.problems import merge_responses, problem_example
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
from upstander.kit.errors import NotFound, problem_responses
from upstander.kit.scopes import Scope, require_scope

router = case_router(tags=["workflow"])

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
    dependencies=[require_scope(Scope.CASES_WRITE)],
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
    case: LockedCase,
    body: TransitionIn,
    ctx: CaseCtx,
    response: Response,
    if_match: str | None = IF_MATCH,
) -> TransitionOut:
    created = await service.transition(
        ctx.session,
        ctx.principal,
        case,
        to=body.to,
        reason=body.reason,
        referred_to=body.referred_to,
        outcome=body.outcome,
        feedback_sent_at=body.feedback_sent_at,
        if_match=if_match,
        vault=ctx.vault,
        events=ctx.events,
        now=ctx.now,
    )
    await ctx.audit(
        "case.transition",
        case,
        detail={"from": created.from_status.value, "to": created.to_status.value},
    )
    response.headers["ETag"] = f'"{case.version}"'
    return TransitionOut.model_validate(created)


@router.get(
    "/cases/{case_id}/transitions",
    operation_id="list_transitions",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="A case's workflow history",
    description="Every transition of the case, oldest first: who, when, from, to and why.",
    response_model=TransitionList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_transitions(case: VisibleCase, ctx: CaseCtx) -> TransitionList:
    transitions = await service.list_transitions(ctx.session, case)
    items = [TransitionOut.model_validate(t) for t in transitions]
    await ctx.audit("transition.list", case)
    return TransitionList(items=items)


@router.patch(
    "/cases/{case_id}",
    operation_id="update_case",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Change a case's severity or priority",
    description=(
        "Send `If-Match` with the ETag of `get_case`; a stale one is refused with 412 "
        "(`stale-version`). Without `If-Match` the write is accepted (last writer wins)."
    ),
    response_model=CaseOut,
    responses={200: {"headers": ETAG_HEADER}, **problem_responses(401, 403, 404, 412, 422)},
)
async def update_case(
    case: LockedCase,
    body: CaseUpdate,
    ctx: CaseCtx,
    response: Response,
    if_match: str | None = IF_MATCH,
) -> CaseOut:
    changes = body.model_dump(include=body.model_fields_set, mode="json")
    await service.update_case(ctx.session, case, changes=changes, if_match=if_match, now=ctx.now)
    await ctx.audit("case.update", case, detail=changes)
    response.headers["ETag"] = f'"{case.version}"'
    return CaseOut.model_validate(case)


# ----------------------------------------------------------------------------- allegations


@router.post(
    "/cases/{case_id}/allegations",
    operation_id="create_allegation",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
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
async def create_allegation(case: LockedCase, body: AllegationIn, ctx: CaseCtx) -> AllegationOut:
    allegation = await service.add_allegation(
        ctx.session,
        ctx.principal,
        case,
        category=body.category,
        description=body.description,
        subject_person_ids=body.subject_person_ids,
        vault=ctx.vault,
        events=ctx.events,
        now=ctx.now,
    )
    await ctx.audit("allegation.create", case, detail={"allegation_id": str(allegation.id)})
    return AllegationOut.model_validate(allegation)


@router.get(
    "/cases/{case_id}/allegations",
    operation_id="list_allegations",
    dependencies=[require_scope(Scope.CASES_CONTENT)],
    summary="A case's allegations and findings",
    response_model=AllegationList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_allegations(case: VisibleCase, ctx: CaseCtx) -> AllegationList:
    allegations = await service.list_allegations(ctx.session, case)
    items = [AllegationOut.model_validate(a) for a in allegations]
    await ctx.audit("allegation.list", case)
    return AllegationList(items=items)


@router.put(
    "/cases/{case_id}/allegations/{allegation_id}/finding",
    operation_id="set_finding",
    dependencies=[require_scope(Scope.CASES_WRITE, Scope.CASES_CONTENT)],
    summary="Write the finding on an allegation",
    description=(
        "While the case is `investigating` or in `decision`. The rationale is sealed under "
        "the case's key; the author is recorded, and may not be the one who closes the case."
    ),
    response_model=AllegationOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_finding(
    case_id: uuid.UUID,  # unused: keeps the path's ids in order in the docs (see access.py)
    allegation_id: uuid.UUID,
    case: LockedCase,
    body: FindingIn,
    ctx: CaseCtx,
) -> AllegationOut:
    allegation = await service.set_finding(
        ctx.session,
        ctx.principal,
        case,
        allegation_id,
        finding=body.finding,
        rationale=body.rationale,
        vault=ctx.vault,
        now=ctx.now,
    )
    await ctx.audit(
        "finding.set",
        case,
        detail={"allegation_id": str(allegation.id), "finding": body.finding.value},
    )
    return AllegationOut.model_validate(allegation)


# ----------------------------------------------------------------------------- links


@router.post(
    "/cases/{case_id}/links",
    operation_id="create_case_link",
    dependencies=[require_scope(Scope.CASES_WRITE)],
    summary="Link two cases",
    description=(
        "`same_subject` or `retaliation_follow_up`. You must be able to see both cases; a "
        "link shows only to people who can see the other case too."
    ),
    status_code=201,
    response_model=LinkOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_case_link(case: VisibleCase, body: LinkIn, ctx: CaseCtx) -> LinkOut:
    other = await visible_case(ctx.session, ctx.principal, body.case_id)
    link = await service.link_cases(
        ctx.session, ctx.principal, case, other, kind=body.kind, now=ctx.now
    )
    await ctx.audit(
        "link.create", case, detail={"linked_case_id": str(other.id), "kind": body.kind.value}
    )
    return LinkOut(
        id=link.id, kind=link.kind, case_id=other.id, number=other.number, created_at=ctx.now
    )


@router.get(
    "/cases/{case_id}/links",
    operation_id="list_case_links",
    dependencies=[require_scope(Scope.CASES_READ)],
    summary="Cases linked to a case",
    description="Both directions; links to cases hidden from you are left out.",
    response_model=LinkList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_case_links(case: VisibleCase, ctx: CaseCtx) -> LinkList:
    items: list[LinkOut] = []
    for link, other_id in await service.links_of(ctx.session, case):
        try:
            other = await visible_case(ctx.session, ctx.principal, other_id)
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
    await ctx.audit("link.list", case)
    return LinkList(items=items)
