// Preloaded (`node --import`) into every node process the benchmark starts: if the runner dies
// without stopping its children (SIGKILL, crash), the node notices that its parent changed and
// shuts itself down, so no benchmark node outlives the run. Not used outside test/bench/.
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) {
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }
}, 500);
timer.unref();
