"""User active calibration and work orders (Tianjin specification §3.2, §3.3, §6.1, §6.2,
§6.4, Table 2's 用户申校 and 失准更换 entities). Two kinds, tagged canonical-msgpack lists
like `ledger.readings`, both signed by a utility (its marketing system is the source of
these entities, Table 2):

- `meter.calibration`: a user asks for an active calibration of a meter, by its asset
  number, through a service channel (申校人员, 申校表号, 服务渠道; the time is the block's);
- `meter.work_order`: a step of a work order's life: accepted (受理), processed with the
  verification record that settled it (处理: 检定结论 from that record), visited (回访),
  evaluated by the user (满意度, 客户意见).

Work orders themselves are opened by the contract (`analysis.service`): a calibration the
model cannot pass opens one, an out-of-tolerance verdict of the model opens a replacement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ledger.encoding import decode
from ledger.errors import InvalidEncoding
from ledger.readings import Payload
from ledger.verification import ANY_64, ANY_200, TASK_NO, InvalidRecord, _match, _one_of, _optional
from ledger.wire import expect_tagged

KIND_CALIBRATION = "meter.calibration"
KIND_WORK_ORDER = "meter.work_order"
CHANNELS = ("app", "web", "hotline", "counter")  # 服务渠道
ACTIONS = ("accept", "process", "visit", "evaluate")  # in the order a work order takes them
SATISFACTION = ("satisfied", "basically_satisfied", "unsatisfied")
REQUEST_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,29}")  # "C-" + it is an order id
ORDER_ID = re.compile(r"[CR]-[0-9A-Za-z][0-9A-Za-z_-]{0,29}")
ASSET_NO = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")


@dataclass(frozen=True)
class CalibrationRequest(Payload):
    TAG: ClassVar[int] = 58
    KIND: ClassVar[str] = KIND_CALIBRATION
    request_id: str
    asset_no: str
    channel: str
    applicant: str  # who asked (a name or a customer number; may be empty)

    @classmethod
    def from_wire(cls, value: Any) -> CalibrationRequest:
        request, asset_no, channel, applicant = expect_tagged(value, cls.TAG, 4, "calibration")
        return cls(_match(request, REQUEST_ID, "request_id"),
                   _match(asset_no, ASSET_NO, "asset_no"),
                   _one_of(channel, CHANNELS, "channel"),
                   _optional(applicant, ANY_64, "applicant"))  # fmt: skip


@dataclass(frozen=True)
class WorkOrderStep(Payload):
    TAG: ClassVar[int] = 59
    KIND: ClassVar[str] = KIND_WORK_ORDER
    order_id: str
    action: str
    staff: str  # who accepted, processed or visited (empty for an evaluation)
    task_no: str  # process: the task of the verification record that settled it
    satisfaction: str  # evaluate: one of SATISFACTION
    opinion: str  # evaluate: the user's words

    @classmethod
    def from_wire(cls, value: Any) -> WorkOrderStep:
        order, action, staff, task, satisfaction, opinion = expect_tagged(
            value, cls.TAG, 6, "work order step"
        )
        step = cls(_match(order, ORDER_ID, "order_id"), _one_of(action, ACTIONS, "action"),
                   _optional(staff, ANY_64, "staff"), _optional(task, ANY_64, "task_no"),
                   _optional(satisfaction, ANY_64, "satisfaction"),
                   _optional(opinion, ANY_200, "opinion"))  # fmt: skip
        step.check_fields()
        return step

    def check_fields(self) -> None:
        """Each action carries its own fields and no other's."""
        wanted = {"process": "task_no", "evaluate": "satisfaction"}.get(self.action)
        if self.action == "process" and not TASK_NO.fullmatch(self.task_no):
            raise InvalidRecord("required", "task_no", "the verification record's task")
        if self.action == "evaluate" and self.satisfaction not in SATISFACTION:
            raise InvalidRecord("allowed_values", "satisfaction", f"one of {list(SATISFACTION)}")
        for name in ("task_no", "satisfaction", "opinion"):
            own = wanted == name or (name == "opinion" and self.action == "evaluate")
            if not own and getattr(self, name):
                raise InvalidRecord("not_allowed", name, f"not part of {self.action!r}")


PAYLOADS: dict[str, Any] = {KIND_CALIBRATION: CalibrationRequest, KIND_WORK_ORDER: WorkOrderStep}


def parse_service(kind: str, payload: bytes) -> CalibrationRequest | WorkOrderStep:
    """The typed payload, or InvalidRecord naming the rule and the field."""
    cls = PAYLOADS.get(kind)
    if cls is None:
        raise InvalidRecord("unknown_kind", kind)
    try:
        parsed: CalibrationRequest | WorkOrderStep = cls.from_wire(decode(payload))
        return parsed
    except InvalidEncoding as exc:
        raise InvalidRecord("malformed", kind, str(exc)) from None
