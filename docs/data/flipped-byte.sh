# docs/explanation/reliability.md: runs/c.h5, a copy of the demo store with one byte of the calculations' gap
# column flipped on disk (in the middle of its first stored chunk).
cp runs/demo.h5 runs/c.h5
.venv/bin/python -c '
import h5py
with h5py.File("runs/c.h5", "r") as f:
    chunk = f["calculations/gap"].id.get_chunk_info(0)
with open("runs/c.h5", "r+b") as f:
    f.seek(chunk.byte_offset + chunk.size // 2)
    byte = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([byte[0] ^ 0xFF]))'
