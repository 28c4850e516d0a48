# docs/explanation/reliability.md: a campaign driver writing runs/real.h5, which it opened through the
# symbolic link runs/link.h5, and holding it (the store's writer lock, as `activemat run` takes it) until stopped.
cp runs/demo.h5 runs/real.h5
ln -s real.h5 runs/link.h5
.venv/bin/python -c '
import signal
from pathlib import Path
from activemat.store.files import WriterLock
WriterLock.acquire(Path("runs/link.h5"))
print("locked", flush=True)
signal.pause()' > driver.out 2>&1 &
for _ in $(seq 300); do grep -q locked driver.out && exit 0; sleep 0.1; done
cat driver.out; exit 1
