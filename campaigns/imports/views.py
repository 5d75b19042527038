"""Staff endpoints for imports: the progress a job's page polls, and its error report."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from ..models import ImportJob
from .selectors import import_progress


@staff_member_required
@require_GET
def import_progress_view(request: HttpRequest, pk: int) -> JsonResponse:
    if not request.user.has_perm("campaigns.view_importjob"):
        raise PermissionDenied
    job = get_object_or_404(ImportJob, pk=pk)
    return JsonResponse(import_progress(job=job))


@staff_member_required
@require_GET
def import_report_download(request: HttpRequest, pk: int) -> FileResponse:
    if not request.user.has_perm("campaigns.view_importjob"):
        raise PermissionDenied
    job = get_object_or_404(ImportJob, pk=pk)
    if not job.error_report:
        raise Http404("This import has no problems to report.")
    try:
        handle = job.error_report.open("rb")
    except FileNotFoundError:
        raise Http404("The report file is gone.") from None
    stem = job.original_name.rsplit(".", 1)[0] or "import"
    return FileResponse(handle, as_attachment=True, filename=f"{stem}-problems.csv", content_type="text/csv")
