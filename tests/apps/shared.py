"""Tasks declared with ``shared_task`` after the apps were built: they still register."""

from qtasks import shared_task


@shared_task
def add(*numbers):
    return sum(numbers)


@shared_task(name="shared_async")
async def shared_async(x):
    return x * 10
