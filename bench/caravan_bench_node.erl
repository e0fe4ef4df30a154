%%% Loaded into benchmark nodes (bench/dist_bench.escript): the timed loops
%%% run inside the node being measured, so no control traffic is counted.
-module(caravan_bench_node).

-export([connect_times/3]).
-export([call_times/3]).
-export([start_recorder/0]).
-export([nodeup_time/2]).

%% @doc Connects to Node Count times, disconnecting in between; returns the
%% microseconds each connect_node/1 took. PauseMs lets both ends forget the
%% old connection before the next one.
-spec connect_times(node(), pos_integer(), non_neg_integer()) -> [non_neg_integer()].
connect_times(Node, Count, PauseMs) ->
    [begin
         T0 = erlang:monotonic_time(nanosecond),
         true = net_kernel:connect_node(Node),
         T1 = erlang:monotonic_time(nanosecond),
         true = erlang:disconnect_node(Node),
         timer:sleep(PauseMs),
         (T1 - T0) div 1000
     end || _ <- lists:seq(1, Count)].

%% @doc Times the call {M, F, A} Count times in nanoseconds, after the
%% untimed call Setup before each (e.g. clearing a cache; none if `none').
%% MFAs rather than funs: funs made by the benchmark script cannot run here.
-spec call_times(mfa() | none, {module(), atom(), [term()]}, pos_integer()) ->
          [non_neg_integer()].
call_times(Setup, {M, F, A}, Count) ->
    [begin
         _ = setup(Setup),
         T0 = erlang:monotonic_time(nanosecond),
         _ = apply(M, F, A),
         erlang:monotonic_time(nanosecond) - T0
     end || _ <- lists:seq(1, Count)].

setup(none) -> ok;
setup({M, F, A}) -> apply(M, F, A).

%% @doc Starts a registered process that notes the wall-clock time (in
%% microseconds; one clock for every VM on the machine) of every nodeup, so
%% that join latency is measured where it happens, not by polling.
-spec start_recorder() -> pid().
start_recorder() ->
    Pid = spawn(fun() -> ok = net_kernel:monitor_nodes(true), record(#{}) end),
    register(caravan_bench_recorder, Pid),
    Pid.

%% @doc When Node last came up here, or none.
-spec nodeup_time(node(), reference()) -> integer() | none.
nodeup_time(Node, Ref) ->
    caravan_bench_recorder ! {get, Node, self(), Ref},
    receive {Ref, T} -> T after 5000 -> none end.

record(Seen) ->
    receive
        {nodeup, N} -> record(Seen#{N => erlang:system_time(microsecond)});
        {nodedown, _} -> record(Seen);
        {get, N, From, Ref} -> From ! {Ref, maps:get(N, Seen, none)}, record(Seen)
    end.
