"""Budget routes, named exactly as the wire paths."""

from django.urls import path

from budgets.views import InitialBudgetApi, RemainingBudgetApi, SpentBudgetApi

urlpatterns = [
    path("get_initial_budget", InitialBudgetApi.as_view(), name="get_initial_budget"),
    path("get_total_spent_budget", SpentBudgetApi.as_view(), name="get_total_spent_budget"),
    path("get_remaining_budget", RemainingBudgetApi.as_view(), name="get_remaining_budget"),
]
