%%% Loaded into benchmark nodes (bench/dist_bench.escript, cluster_bench.escript): the timed loops
%%% run inside the node being measured, so no control traffic is counted.
-module(caravan_bench_node).

-export([connect_times/3]).
-export([call_times/3]).
-export([start_recorder/0]).
-export([nodeup_time/2]).
-export([start_stage_tracer/1]).
-export([listed_time/2]).
-export([forget_stages/1]).

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

%% @doc Traces what cluster Name's process receives, to note (wall clock,
%% microseconds) when a member list first named each node: the first stage
%% of a join, which nodeup_time/2 ends.
-spec start_stage_tracer(atom()) -> pid().
start_stage_tracer(Name) ->
    Cluster = whereis(caravan_cluster:process_name(Name)),
    Pid = spawn(fun() -> listed(#{}) end),
    %% The trace's own timestamp: when the message arrived, not when the
    %% tracer got round to it.
    erlang:trace(Cluster, true, ['receive', timestamp, {tracer, Pid}]),
    register(caravan_bench_stages, Pid),
    Pid.

%% @doc When a member list first named Node here, or none.
-spec listed_time(node(), reference()) -> integer() | none.
listed_time(Node, Ref) ->
    caravan_bench_stages ! {get, Node, self(), Ref},
    receive {Ref, T} -> T after 5000 -> none end.

%% @doc Forgets Node, so that its next listing is noted afresh.
-spec forget_stages(node()) -> ok.
forget_stages(Node) ->
    caravan_bench_stages ! {forget, Node},
    ok.

listed(Seen) ->
    receive
        {trace_ts, _, 'receive', {caravan_watch, _, {members, Ns}}, Ts} ->
            T = us(Ts),
            listed(maps:merge(maps:from_list([{N, T} || N <- Ns]), Seen));
        {trace_ts, _, 'receive', _, _} ->
            listed(Seen);
        {forget, N} ->
            listed(maps:remove(N, Seen));
        {get, N, From, Ref} ->
            From ! {Ref, maps:get(N, Seen, none)},
            listed(Seen)
    end.

us({Mega, S, Micro}) -> (Mega * 1000000 + S) * 1000000 + Micro.
