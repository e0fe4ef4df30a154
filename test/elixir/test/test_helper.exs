# Every node these tests start runs without epmd; one found running would
# make them pass for the wrong reason.
{pids, _} = System.cmd("pgrep", ["-x", "epmd"])

if pids != "" do
  raise "an epmd is running (pids #{String.trim(pids)}): tests must run without one"
end

ExUnit.start()
