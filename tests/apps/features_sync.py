from qtasks import QueueTasks
from tests.apps.features import define
from tests.apps.routes import router

app = QueueTasks(name="features-sync")
define(app)
app.include_router(router)
from tests.apps import shared  # noqa: E402,F401  (shared tasks declared after the app exists)
