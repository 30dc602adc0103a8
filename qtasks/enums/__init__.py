from qtasks.enums.task_status import ENDED_STATUSES, FINAL_STATUSES, TaskStatusEnum

__all__ = ["ENDED_STATUSES", "FINAL_STATUSES", "TaskStatusEnum"]
