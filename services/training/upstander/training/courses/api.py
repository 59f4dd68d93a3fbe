"""Routes of the course catalogue: authorise, call the service, return a schema."""

from __future__ import annotations

import uuid

from fastapi import Depends, Header, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles, staff_or_client
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import Scope, require_scope
from upstander.training.courses import service
from upstander.training.courses.schemas import CourseCreate, CourseOut, CourseUpdate
from upstander.training.models import Course, CourseKind

router = make_router(prefix="/training/v1/courses", tags=["courses"])

editors = require_roles(Role.TRAINER, Role.ADMIN)

IF_MATCH = Header(
    None,
    alias="If-Match",
    max_length=200,
    description='The ETag of the version you read (e.g. `"3"`); 412 if it is no longer current.',
)


def _etag(course: Course) -> str:
    return f'"{course.version}"'


def _location(course: Course) -> str:
    return f"/training/v1/courses/{course.id}"


@router.get(
    "",
    operation_id="list_courses",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="List the organisation's courses",
    response_model=Page[CourseOut],
    responses=problem_responses(400),
)
async def list_courses(
    kind: CourseKind | None = Query(None, description="Only courses of this kind."),
    include_archived: bool = Query(False, description="Include archived (inactive) courses."),
    external_ref: str | None = Query(
        None,
        max_length=265,
        description="Only the course another system calls this: `<system>:<id>`.",
        examples=["workday:C-17"],
    ),
    params: PageParams = Depends(page_params),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> Page[CourseOut]:
    courses, next_cursor = await service.list_courses(
        session,
        principal,
        params,
        kind=kind,
        include_archived=include_archived,
        external_ref=external_ref,
    )
    return Page[CourseOut](
        items=[CourseOut.model_validate(course) for course in courses], next_cursor=next_cursor
    )


@router.post(
    "",
    operation_id="create_course",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Add a course to the catalogue (trainer, admin); upsert by external reference",
    description=(
        "201 with the new course. When one of `external_refs` already names a course of the "
        "organisation, that course is updated with the body instead (200): an LMS or HR "
        "sync can send its whole catalogue again without making duplicates. References "
        "naming two different courses: 409."
    ),
    status_code=status.HTTP_201_CREATED,
    response_model=CourseOut,
    responses={
        200: {"description": "The course with this external reference, updated."},
        **problem_responses(400, 409, 412, 413, 415),
    },
)
async def create_course(
    body: CourseCreate,
    response: Response,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> CourseOut:
    course, created = await service.upsert_course(session, principal, body)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = _location(course)
    response.headers["ETag"] = _etag(course)
    return CourseOut.model_validate(course)


@router.get(
    "/{course_id}",
    operation_id="get_course",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Get a course",
    response_model=CourseOut,
)
async def get_course(
    course_id: uuid.UUID,
    response: Response,
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> CourseOut:
    course = await service.get_course(session, principal, course_id)
    response.headers["ETag"] = _etag(course)
    return CourseOut.model_validate(course)


@router.patch(
    "/{course_id}",
    operation_id="update_course",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Change a course (trainer, admin); send If-Match to avoid lost updates",
    response_model=CourseOut,
    responses=problem_responses(400, 412, 413, 415),
)
async def update_course(
    course_id: uuid.UUID,
    body: CourseUpdate,
    response: Response,
    if_match: str | None = IF_MATCH,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> CourseOut:
    course = await service.update_course(session, principal, course_id, body, if_match=if_match)
    response.headers["ETag"] = _etag(course)
    return CourseOut.model_validate(course)


@router.delete(
    "/{course_id}",
    operation_id="archive_course",
    dependencies=[require_scope(Scope.TRAINING_WRITE)],
    summary="Archive a course (trainer, admin); it stays readable for past completions",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(412),
)
async def archive_course(
    course_id: uuid.UUID,
    if_match: str | None = IF_MATCH,
    principal: Principal = editors,
    session: AsyncSession = Depends(get_session),
) -> Response:
    await service.archive_course(session, principal, course_id, if_match=if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
