"""Budgets and the ledger in Django admin.

Initial amounts are set or topped up through the budget services (each change audited);
spent amounts only move with the ledger and are read-only here.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from accounts.admin import LomasUserAdmin
from accounts.models import User
from budgets.models import AMOUNT, Budget, DatasetBudget, LedgerEntry
from budgets.selectors import dataset_budget_to_wire, dataset_spent
from budgets.services import (
    budget_add_access,
    budget_change_initial,
    budget_revoke,
    budget_top_up,
    dataset_budget_set,
)
from datasets.admin import DatasetAdmin
from datasets.models import Dataset
from lomas.admin_display import ExplainedDeletion, ReadOnlyAdmin, amount_html
from lomas.amounts import amount_text, delta_short, epsilon_short


class AmountField(forms.DecimalField):
    """A non-negative privacy amount as wide as the model's; changed only if the number differs."""

    def __init__(self, label: str, **kwargs: Any) -> None:
        super().__init__(
            label=label,
            min_value=Decimal(0),
            max_digits=AMOUNT["max_digits"],
            decimal_places=AMOUNT["decimal_places"],
            widget=forms.NumberInput(attrs={"class": "lomas-amount-input"}),
            **kwargs,
        )

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(initial) != self.to_python(data)
        except forms.ValidationError:
            return True


def spent_exceeds_initial(budget: Budget, epsilon: Decimal | None, delta: Decimal | None) -> str | None:
    """The error message when new initial amounts would fall below what the budget has spent, else None."""
    if budget.pk is None:
        return None
    if (epsilon is not None and epsilon < budget.spent_epsilon) or (delta is not None and delta < budget.spent_delta):
        return (
            f"The initial budget cannot be set below the spent budget "
            f"(epsilon {amount_text(budget.spent_epsilon)}, delta {amount_text(budget.spent_delta)})."
        )
    return None


class BudgetForm(forms.ModelForm):
    """Initial amounts shown without trailing zeros and never set below what is spent."""

    initial_epsilon = AmountField("Initial ε")
    initial_delta = AmountField("Initial δ")

    class Meta:
        model = Budget
        fields = ("user", "dataset", "initial_epsilon", "initial_delta")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("initial_epsilon", "initial_delta"):
            if self.instance.pk is not None:
                self.initial[name] = amount_text(getattr(self.instance, name))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        error = spent_exceeds_initial(self.instance, cleaned.get("initial_epsilon"), cleaned.get("initial_delta"))
        if error:
            self.add_error("initial_epsilon", error)
        return cleaned


def budget_save(request: HttpRequest, budget: Budget, form: forms.ModelForm, change: bool) -> Budget:
    """Grant a new budget or set changed initial amounts, through the audited services."""
    user, dataset = form.cleaned_data.get("user", budget.user), form.cleaned_data.get("dataset", budget.dataset)
    epsilon, delta = form.cleaned_data["initial_epsilon"], form.cleaned_data["initial_delta"]
    if not change:
        return budget_add_access(actor=request.user, user=user, dataset=dataset, epsilon=epsilon, delta=delta)
    if {"initial_epsilon", "initial_delta"} & set(form.changed_data):
        return budget_change_initial(actor=request.user, user=user, dataset=dataset, epsilon=epsilon, delta=delta)
    return budget


# What admin's delete page lists: the objects deleted, counts per model, missing permissions, protected objects.
DeletedObjects = tuple[list[str], dict[str, int], set[str], list[str]]


def kept_instead_of_deleted(description: str) -> DeletedObjects:
    """What admin's delete page lists for an object deleted by a service that keeps every ledger row."""
    return [description], {}, set(), []


class AmountColumns:
    """Budget amounts, short with the exact decimal on hover ("-" for a budget row not saved yet)."""

    # A budget's amounts on a form: each initial amount (editable) beside its spent and remaining.
    amount_fields = (
        "initial_epsilon",
        "spent_epsilon_text",
        "remaining_epsilon_text",
        "initial_delta",
        "spent_delta_text",
        "remaining_delta_text",
    )

    @staticmethod
    def _text(budget: Budget, amount: str) -> str:
        if budget.pk is None:
            return "-"
        return amount_html(getattr(budget, amount), "delta" if amount.endswith("delta") else "epsilon")

    @admin.display(description="user", ordering="user__username")
    def user_link(self, budget: Budget) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[budget.user_id]), budget.user
        )

    @admin.display(description="dataset", ordering="dataset__name")
    def dataset_link(self, budget: Budget) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:datasets_dataset_change", args=[budget.dataset_id]), budget.dataset
        )

    @admin.display(description="links")
    def ledger_link(self, budget: Budget) -> str:
        if budget.pk is None:
            return "-"
        return format_html(
            '<a href="{}">budget</a> · <a href="{}?budget__id__exact={}">ledger</a> · <a href="{}?q={}">archive</a>',
            reverse("admin:budgets_budget_change", args=[budget.pk]),
            reverse("admin:budgets_ledgerentry_changelist"),
            budget.pk,
            reverse("admin:queries_queryarchive_changelist"),
            budget.user.username,
        )

    @admin.display(description="initial ε", ordering="initial_epsilon")
    def initial_epsilon_text(self, budget: Budget) -> str:
        return self._text(budget, "initial_epsilon")

    @admin.display(description="spent ε", ordering="spent_epsilon")
    def spent_epsilon_text(self, budget: Budget) -> str:
        return self._text(budget, "spent_epsilon")

    @admin.display(description="remaining ε")
    def remaining_epsilon_text(self, budget: Budget) -> str:
        return self._text(budget, "remaining_epsilon")

    @admin.display(description="initial δ", ordering="initial_delta")
    def initial_delta_text(self, budget: Budget) -> str:
        return self._text(budget, "initial_delta")

    @admin.display(description="spent δ", ordering="spent_delta")
    def spent_delta_text(self, budget: Budget) -> str:
        return self._text(budget, "spent_delta")

    @admin.display(description="remaining δ")
    def remaining_delta_text(self, budget: Budget) -> str:
        return self._text(budget, "remaining_delta")


class LedgerAmounts:
    """A ledger entry's ε and δ, short with the exact decimal on hover."""

    @admin.display(description="amount ε", ordering="epsilon")
    def epsilon_text(self, entry: LedgerEntry) -> str:
        return amount_html(entry.epsilon, "epsilon")

    @admin.display(description="amount δ", ordering="delta")
    def delta_text(self, entry: LedgerEntry) -> str:
        return amount_html(entry.delta, "delta")

    @admin.display(description="job")
    def job_link(self, entry: LedgerEntry) -> str:
        if entry.job_uid is None:
            return "-"
        return format_html(
            '<a href="{}?q={}">{}</a>', reverse("admin:queries_job_changelist"), entry.job_uid, entry.job_uid
        )


class LedgerEntryInline(LedgerAmounts, admin.TabularInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "epsilon_text", "delta_text", "job_link", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TopUpForm(forms.Form):
    epsilon = AmountField("Add to ε", initial=0)
    delta = AmountField("Add to δ", initial=0)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not self.errors and not (cleaned["epsilon"] or cleaned["delta"]):
            raise forms.ValidationError("Enter an amount of ε or δ to add.")
        return cleaned


@admin.register(Budget)
class BudgetAdmin(AmountColumns, ExplainedDeletion, admin.ModelAdmin):
    form = BudgetForm
    list_display = (
        "user_link",
        "dataset_link",
        "initial_epsilon_text",
        "spent_epsilon_text",
        "remaining_epsilon_text",
        "initial_delta_text",
        "spent_delta_text",
        "remaining_delta_text",
        "revoked_at",
        "ledger_link",
    )
    list_select_related = ("user", "dataset")
    list_filter = ("dataset", "user", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("user__username", "dataset__name")
    readonly_fields = (
        "spent_epsilon_text",
        "remaining_epsilon_text",
        "spent_delta_text",
        "remaining_delta_text",
        "created_at",
        "revoked_at",
        "ledger_link",
    )
    inlines = (LedgerEntryInline,)

    def get_readonly_fields(self, request: HttpRequest, obj: Budget | None = None) -> tuple[str, ...]:
        if obj is not None:
            return ("user", "dataset", *self.readonly_fields)
        return ()

    def get_fields(self, request: HttpRequest, obj: Budget | None = None) -> list[str]:
        if obj is None:
            return ["user", "dataset", "initial_epsilon", "initial_delta"]
        return ["user", "dataset", *self.amount_fields, "created_at", "revoked_at", "ledger_link"]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def deletion_refusal(self, obj: Budget) -> str | None:
        if not obj.is_revoked:
            return None
        return (
            f"the access of {obj.user} to {obj.dataset} is already revoked; its budget (ε "
            f"{epsilon_short(obj.spent_epsilon)} and δ {delta_short(obj.spent_delta)} spent) and its ledger are kept."
        )

    def has_delete_permission(self, request: HttpRequest, obj: Budget | None = None) -> bool:
        if obj is not None and obj.is_revoked:
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> DeletedObjects:
        return kept_instead_of_deleted(f"Access of {objs[0]}: revoked, its budget and ledger kept")

    def save_model(self, request: HttpRequest, obj: Budget, form: forms.ModelForm, change: bool) -> None:
        saved = budget_save(request, obj, form, change)
        obj.pk = saved.pk
        obj.refresh_from_db()
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Budget) -> None:
        budget_revoke(actor=request.user, user=obj.user, dataset=obj.dataset)

    def get_urls(self) -> list[URLPattern]:
        top_up = path(
            "<path:object_id>/top-up/",
            self.admin_site.admin_view(self.top_up_view),
            name="budgets_budget_top_up",
        )
        return [top_up, *super().get_urls()]

    def top_up_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Add to a budget's initial ε and δ (what is spent stays)."""
        budget = get_object_or_404(Budget.objects.select_related("user", "dataset"), pk=object_id)
        if not self.has_change_permission(request, budget):
            return HttpResponseRedirect(reverse("admin:index"))
        form = TopUpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            old = (budget.initial_epsilon, budget.initial_delta)
            budget = budget_top_up(
                actor=request.user,
                user=budget.user,
                dataset=budget.dataset,
                epsilon=form.cleaned_data["epsilon"],
                delta=form.cleaned_data["delta"],
            )
            self.message_user(
                request,
                f"Topped up {budget.user.username} on {budget.dataset.name}: "
                f"ε {amount_text(old[0])} → {amount_text(budget.initial_epsilon)}, "
                f"δ {amount_text(old[1])} → {amount_text(budget.initial_delta)}.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:budgets_budget_change", args=[budget.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Top up the budget of {budget.user.username} on {budget.dataset.name}",
            "opts": self.model._meta,
            "original": budget,
            "budget": budget,
            "amounts": {
                "Initial ε": amount_text(budget.initial_epsilon),
                "Spent ε": amount_text(budget.spent_epsilon),
                "Remaining ε": amount_text(budget.remaining_epsilon),
                "Initial δ": amount_text(budget.initial_delta),
                "Spent δ": amount_text(budget.spent_delta),
                "Remaining δ": amount_text(budget.remaining_delta),
            },
            "form": form,
        }
        return TemplateResponse(request, "admin/budgets/budget/top_up.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(LedgerAmounts, ReadOnlyAdmin):
    list_display = ("created_at", "user", "dataset", "kind", "epsilon_text", "delta_text", "job_link")
    list_filter = (
        "kind",
        ("budget__dataset", admin.RelatedOnlyFieldListFilter),
        ("budget__user", admin.RelatedOnlyFieldListFilter),
        "created_at",
    )
    search_fields = ("budget__user__username", "budget__dataset__name", "job_uid")
    date_hierarchy = "created_at"
    list_select_related = ("budget__user", "budget__dataset")

    fields = (
        "created_at",
        "budget_link",
        "user",
        "dataset",
        "kind",
        "epsilon_exact",
        "delta_exact",
        "job_link",
        "note",
    )
    readonly_fields = fields

    @admin.display(ordering="budget__user__username")
    def user(self, entry: LedgerEntry) -> str:
        user = entry.budget.user
        return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user)

    @admin.display(ordering="budget__dataset__name")
    def dataset(self, entry: LedgerEntry) -> str:
        dataset = entry.budget.dataset
        return format_html('<a href="{}">{}</a>', reverse("admin:datasets_dataset_change", args=[dataset.pk]), dataset)

    @admin.display(description="budget")
    def budget_link(self, entry: LedgerEntry) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:budgets_budget_change", args=[entry.budget_id]), entry.budget
        )

    @admin.display(description="exact ε")
    def epsilon_exact(self, entry: LedgerEntry) -> str:
        return amount_text(entry.epsilon)

    @admin.display(description="exact δ")
    def delta_exact(self, entry: LedgerEntry) -> str:
        return amount_text(entry.delta)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        entry = self.get_object(request, object_id)
        if entry is not None:
            subtitle = (
                f"{entry.get_kind_display()} of ε {epsilon_short(entry.epsilon)}, δ {delta_short(entry.delta)} "
                f"on {entry.budget}"
            )
            extra_context = {**(extra_context or {}), "subtitle": subtitle}
        return super().change_view(request, object_id, form_url, extra_context)


class BudgetInlineForm(BudgetForm):
    """A budget row of a user: the dataset is chosen once, the initial amounts never below what is spent."""

    class Meta(BudgetForm.Meta):
        fields = ("dataset", "initial_epsilon", "initial_delta")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["dataset"].disabled = True

    def validate_unique(self) -> None:
        """A revoked budget on the dataset is granted again (with its ledger), not a duplicate."""
        dataset = self.cleaned_data.get("dataset")
        revoked = Budget.objects.filter(user_id=self.instance.user_id, dataset=dataset, revoked_at__isnull=False)
        if self.instance.pk is None and dataset is not None and revoked.exists():
            return
        super().validate_unique()


class BudgetInline(AmountColumns, admin.TabularInline):
    """The user's access: unrevoked budgets (revoke one on its budget page; revoked ones are listed there)."""

    model = Budget
    form = BudgetInlineForm
    fields = ("dataset", *AmountColumns.amount_fields, "ledger_link")
    readonly_fields = (
        "spent_epsilon_text",
        "remaining_epsilon_text",
        "spent_delta_text",
        "remaining_delta_text",
        "ledger_link",
    )
    extra = 1
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Budget]:
        return super().get_queryset(request).filter(revoked_at=None)


class UserWithBudgetsAdmin(LomasUserAdmin):
    """The user page of accounts, with the user's budgets inline (changed through the budget services)."""

    inlines = (*LomasUserAdmin.inlines, BudgetInline)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> DeletedObjects:
        return kept_instead_of_deleted(f"User {objs[0]}: deactivated, their budgets revoked and their ledgers kept")

    def save_formset(
        self, request: HttpRequest, form: forms.ModelForm, formset: BaseInlineFormSet, change: bool
    ) -> None:
        if formset.model is not Budget:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)
        for budget in formset.new_objects:
            budget_add_access(
                actor=request.user,
                user=form.instance,
                dataset=budget.dataset,
                epsilon=budget.initial_epsilon,
                delta=budget.initial_delta,
            )
        for budget, _ in formset.changed_objects:
            budget_change_initial(
                actor=request.user,
                user=budget.user,
                dataset=budget.dataset,
                epsilon=budget.initial_epsilon,
                delta=budget.initial_delta,
            )


class DatasetBudgetForm(forms.ModelForm):
    """A dataset's total cap over all its researchers, never below what they spent in total."""

    cap_epsilon = AmountField("Total ε cap")
    cap_delta = AmountField("Total δ cap")

    class Meta:
        model = DatasetBudget
        fields = ("dataset", "cap_epsilon", "cap_delta")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("cap_epsilon", "cap_delta"):
            if getattr(self.instance, name) is not None:
                self.initial[name] = amount_text(getattr(self.instance, name))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        dataset = cleaned.get("dataset") or (self.instance.dataset if self.instance.pk is not None else None)
        epsilon, delta = cleaned.get("cap_epsilon"), cleaned.get("cap_delta")
        if dataset is not None and epsilon is not None and delta is not None:
            spent = dataset_spent(dataset=dataset)
            if epsilon < spent.epsilon or delta < spent.delta:
                self.add_error(
                    "cap_epsilon",
                    f"The total budget cannot be set below what its researchers spent in total "
                    f"(epsilon {amount_text(spent.epsilon)}, delta {amount_text(spent.delta)}).",
                )
        return cleaned


def total_budget_text(dataset: Dataset) -> str:
    """A dataset's cap, what all its researchers spent on it together, and what the cap leaves."""
    wire = dataset_budget_to_wire(dataset=dataset)
    spent = f"spent ε {wire['total_spent_epsilon']:g}, δ {wire['total_spent_delta']:g}"
    if wire["epsilon"] is None:
        return f"no cap; {spent}"
    return (
        f"cap ε {wire['epsilon']:g}, δ {wire['delta']:g}; {spent}; "
        f"remaining ε {wire['remaining_epsilon']:g}, δ {wire['remaining_delta']:g}"
    )


@admin.register(DatasetBudget)
class DatasetBudgetAdmin(admin.ModelAdmin):
    """Dataset caps: set through dataset_budget_set (audited, never below what is spent), never deleted."""

    form = DatasetBudgetForm
    list_display = ("dataset", "total")
    readonly_fields = ("total",)

    @admin.display(description="total budget (all researchers together)")
    def total(self, cap: DatasetBudget) -> str:
        return total_budget_text(cap.dataset) if cap.pk is not None else "-"

    def get_readonly_fields(self, request: HttpRequest, obj: DatasetBudget | None = None) -> tuple[str, ...]:
        return ("dataset", "total") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: DatasetBudget | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: DatasetBudget, form: forms.ModelForm, change: bool) -> None:
        dataset = form.cleaned_data.get("dataset", obj.dataset if change else None)
        saved = dataset_budget_set(
            actor=request.user,
            dataset=dataset,
            epsilon=form.cleaned_data["cap_epsilon"],
            delta=form.cleaned_data["cap_delta"],
        )
        obj.pk = saved.pk
        obj.refresh_from_db()
        obj._state.adding = False


class DatasetWithBudgetAdmin(DatasetAdmin):
    """The dataset page of datasets, showing its total budget (set on the Dataset budgets page)."""

    readonly_fields = (*DatasetAdmin.readonly_fields, "total_budget_text")

    def get_fieldsets(self, request: HttpRequest, obj: Dataset | None = None) -> list[tuple[str | None, dict]]:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        (title, options), *rest = fieldsets
        return [(title, {**options, "fields": (*options["fields"], "total_budget_text")}), *rest]

    @admin.display(description="total budget (all researchers together)")
    def total_budget_text(self, dataset: Dataset) -> str:
        return total_budget_text(dataset) if dataset.pk is not None else "-"


admin.site.unregister(User)
admin.site.register(User, UserWithBudgetsAdmin)
admin.site.unregister(Dataset)
admin.site.register(Dataset, DatasetWithBudgetAdmin)
