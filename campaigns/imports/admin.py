"""Admin for imports: upload, preview and column mapping, then a page with live progress and the report.

Steps: ``add`` (upload a file; it is checked at once) -> ``mapping`` (preview of the first rows, a field for
each column, default country, duplicate policy, list) -> the job's page, which polls
``campaigns:import_progress`` until the background import has finished.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from messaging.services import audit_record

from ..models import ContactList, ImportJob
from . import mapping as mapping_mod
from .mapping import MappingError
from .readers import ImportFileError, megabytes
from .selectors import import_preview, import_progress, region_choices
from .services import (
    ImportJobBusyError,
    import_job_configure,
    import_job_create,
    import_job_delete,
    import_job_resume,
    import_job_stalled,
)


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Spreadsheet",
        help_text="CSV (comma, semicolon, tab or pipe separated; any common encoding) or Excel .xlsx.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,.xlsx"}),
    )
    kind = forms.ChoiceField(
        label="The file holds", choices=ImportJob.Kind.choices, initial=ImportJob.Kind.CONTACTS,
        widget=forms.RadioSelect,
    )


def _target_choices(header_name: str) -> list[tuple[str, str]]:
    custom = mapping_mod.CUSTOM + mapping_mod.custom_key(header_name)
    return [("", "(ignore this column)")] + [(f, mapping_mod.FIELD_LABELS[f]) for f in mapping_mod.STANDARD_FIELDS] + [
        (custom, mapping_mod.describe(custom))
    ]


def _preset_list(request) -> ContactList | None:
    """The list named by ``?contact_list=<id>`` (a list's page links here to import into it), if any."""
    pk = request.GET.get("contact_list") or ""
    return ContactList.objects.filter(pk=pk).first() if pk.isdigit() else None


class MappingForm(forms.Form):
    region = forms.ChoiceField(
        label="Default country", required=False,
        help_text="For numbers written without a country code, e.g. (415) 555-0100 or 07911 123456.",
    )
    policy = forms.ChoiceField(
        label="A number already in the contacts", choices=ImportJob.Policy.choices, widget=forms.RadioSelect,
        help_text="Duplicates inside the file follow the same rule: merged into the first row, or ignored.",
    )
    contact_list = forms.ModelChoiceField(ContactList.objects.all(), required=False, label="Add to list")
    new_list_name = forms.CharField(required=False, max_length=120, label="or a new list named")

    def __init__(self, *args, job: ImportJob, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.fields["region"].choices = region_choices()
        for column, name in enumerate(job.header):
            self.fields[f"col_{column}"] = forms.ChoiceField(
                label=name, choices=_target_choices(name), required=False,
                initial=job.mapping[column] if column < len(job.mapping) else "",
            )
        if job.kind != ImportJob.Kind.CONTACTS:
            for name in ("policy", "contact_list", "new_list_name"):
                self.fields[name].required = False
                self.fields[name].widget = forms.HiddenInput()

    def column_fields(self):
        return [self[f"col_{column}"] for column in range(len(self.job.header))]

    def mapping(self) -> list[str]:
        return [self.cleaned_data.get(f"col_{column}") or "" for column in range(len(self.job.header))]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "contact_list", "status", "progress_bar", "rows", "created_count",
                    "updated_count", "skipped_count", "invalid_count", "duplicate_count", "created_by", "created_at")
    list_filter = ("status", "kind")
    list_select_related = ("contact_list", "created_by")
    search_fields = ("original_name",)
    change_form_template = "admin/campaigns/importjob/change_form.html"
    readonly_fields = ("original_name", "kind", "status", "file_format", "encoding", "delimiter", "size_bytes",
                       "region", "policy", "contact_list", "created_by", "created_at", "started_at", "finished_at",
                       "error_message")
    fields = readonly_fields

    @admin.display(description="progress")
    def progress_bar(self, job: ImportJob):
        return format_html('<progress max="100" value="{}"></progress> {}%', job.progress, job.progress)

    def has_change_permission(self, request, obj=None):
        return False  # a job is changed only by its steps and by the import itself

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status == ImportJob.Status.RUNNING and not import_job_stalled(job=obj):
            return False  # a live worker is importing it
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        import_job_delete(job=obj)

    def delete_queryset(self, request, queryset):
        for job in queryset:
            try:
                import_job_delete(job=job)
            except ImportJobBusyError as exc:
                self.message_user(request, f"{job}: {exc}", messages.WARNING)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<int:pk>/mapping/", self.admin_site.admin_view(self.mapping_view), name=f"{info[0]}_{info[1]}_mapping"),
            path("<int:pk>/resume/", self.admin_site.admin_view(self.resume_view), name=f"{info[0]}_{info[1]}_resume"),
        ] + super().get_urls()

    @method_decorator(require_POST)
    def resume_view(self, request, pk: int):
        if not self.has_view_permission(request) or not self.has_add_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=pk)
        if import_job_resume(job=job):
            messages.success(request, f"{job} is back on the queue; it goes on from its last saved chunk.")
        else:
            messages.info(request, f"{job} does not need resuming.")
        return redirect("admin:campaigns_importjob_change", job.pk)

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.opts, "has_view_permission": True, **extra}

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        preset = _preset_list(request)  # kept in the form's URL, then offered as the list on the next step
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                job = import_job_create(upload=form.cleaned_data["file"], user=request.user,
                                        kind=form.cleaned_data["kind"])
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                url = reverse("admin:campaigns_importjob_mapping", args=[job.pk])
                if preset and job.kind == ImportJob.Kind.CONTACTS:
                    url += f"?contact_list={preset.pk}"
                return redirect(url)
        title = f"Import contacts into {preset}" if preset else "Import contacts"
        return TemplateResponse(
            request, "admin/campaigns/importjob/upload.html",
            self._context(request, form=form, title=title, limit=megabytes(settings.IMPORT_MAX_BYTES)),
        )

    def mapping_view(self, request, pk: int):
        if not self.has_add_permission(request):
            raise PermissionDenied
        job = get_object_or_404(ImportJob, pk=pk)
        if job.status != ImportJob.Status.NEW:
            return redirect("admin:campaigns_importjob_change", job.pk)
        initial = {"region": settings.PHONENUMBER_DEFAULT_REGION, "policy": ImportJob.Policy.UPDATE}
        preset = _preset_list(request) if job.kind == ImportJob.Kind.CONTACTS else None
        if preset:
            initial["contact_list"] = preset.pk
        form = MappingForm(request.POST or None, job=job, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                import_job_configure(
                    job=job, mapping=form.mapping(), region=form.cleaned_data["region"],
                    policy=form.cleaned_data["policy"] or ImportJob.Policy.UPDATE,
                    contact_list=form.cleaned_data["contact_list"],
                    new_list_name=form.cleaned_data["new_list_name"],
                )
            except (MappingError, ImportFileError) as exc:
                form.add_error(None, str(exc))
            else:
                job.refresh_from_db()
                audit_record(user=request.user, obj=job, action="Started import",
                             detail=f"{job.original_name} into {job.contact_list or 'no list'}")
                messages.success(request, f"Importing {job.original_name} in the background.")
                return redirect("admin:campaigns_importjob_change", job.pk)
        preview = import_preview(job=job)
        return TemplateResponse(
            request, "admin/campaigns/importjob/mapping.html",
            self._context(request, form=form, job=job, preview=preview, title=f"Choose columns: {job.original_name}"),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if job is not None:
            extra_context.update(
                job=job,
                summary=import_progress(job=job),
                progress_url=reverse("campaigns:import_progress", args=[job.pk]),
                report_url=reverse("campaigns:import_report", args=[job.pk]) if job.error_report else "",
                mapping_url=reverse("admin:campaigns_importjob_mapping", args=[job.pk])
                if job.status == ImportJob.Status.NEW else "",
                resume_url=reverse("admin:campaigns_importjob_resume", args=[job.pk])
                if job.status in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING) else "",
                columns=[(name, mapping_mod.describe(t)) for name, t in zip(job.header, job.mapping, strict=False)],
            )
        return super().change_view(request, object_id, form_url, extra_context)
