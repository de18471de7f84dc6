"""The three budget routes of a researcher (spec §1.4)."""

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.models import Budget
from budgets.selectors import access_check, budget_get
from lomas.requests import DatasetRequestSerializer, parse_body


class _BudgetApi(APIView):
    def budget(self, request: Request) -> Budget:
        body = parse_body(DatasetRequestSerializer, request)
        dataset = access_check(user=request.user, dataset_name=body["dataset_name"])
        return budget_get(user=request.user, dataset=dataset)


class InitialBudgetApi(_BudgetApi):
    """POST /get_initial_budget."""

    def post(self, request: Request) -> Response:
        budget = self.budget(request)
        return Response(
            {"initial_epsilon": float(budget.initial_epsilon), "initial_delta": float(budget.initial_delta)}
        )


class SpentBudgetApi(_BudgetApi):
    """POST /get_total_spent_budget."""

    def post(self, request: Request) -> Response:
        budget = self.budget(request)
        return Response(
            {"total_spent_epsilon": float(budget.spent_epsilon), "total_spent_delta": float(budget.spent_delta)}
        )


class RemainingBudgetApi(_BudgetApi):
    """POST /get_remaining_budget."""

    def post(self, request: Request) -> Response:
        budget = self.budget(request)
        return Response(
            {"remaining_epsilon": float(budget.remaining_epsilon), "remaining_delta": float(budget.remaining_delta)}
        )
