"""The seed documents' examples, as written there (Depends with get_db, State step1/step2)."""

from contextlib import asynccontextmanager

from qtasks.asyncio import QueueTasks
from qtasks.plugins import AsyncState, Depends

app = QueueTasks(name="seeds")


class FakeDb:
    async def disconnect(self):
        pass

    def execute(self, *args):
        return args


async def connect_to_db():
    return FakeDb()


@asynccontextmanager
async def get_db():
    db = await connect_to_db()
    yield db
    print("close...")
    await db.disconnect()


@app.task
async def test_depends(depends: Depends(get_db)):
    depends.execute(...)
    print("Вызов выполнен")
    return


class MyState(AsyncState):
    pass


@app.task
async def step1(state: MyState):
    await state.set("state", "await_phone")
    await state.update(step=1, prompt="Введите телефон")
    return "ok"


@app.task
async def step2(state: MyState):
    print(await state.get_all())

    cur = await state.get("state")
    if cur != "await_phone":
        return "error"
    await state.update(step=2)
    await state.delete("state")
    await state.clear()
    return "ok"
