from qtasks.enums.task_status import FINAL_STATUSES, TaskStatusEnum

__all__ = ["FINAL_STATUSES", "TaskStatusEnum"]
