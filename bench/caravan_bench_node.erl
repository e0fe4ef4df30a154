%%% Loaded into benchmark nodes (bench/dist_bench.escript): the timed loops
%%% run inside the node being measured, so no control traffic is counted.
-module(caravan_bench_node).

-export([connect_times/3]).
-export([call_times/3]).

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
