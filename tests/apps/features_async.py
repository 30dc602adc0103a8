from qtasks.asyncio import QueueTasks
from tests.apps.features import define
from tests.apps.routes import async_router

app = QueueTasks(name="features-async")
define(app)
app.include_router(async_router)
from tests.apps import shared  # noqa: E402,F401  (shared tasks declared after the app exists)
