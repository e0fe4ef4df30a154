%%% Runs inside test nodes: records every nodedown of a set of nodes, so a
%%% test can assert that connections survived.
-module(caravan_test_watcher).

-export([start/1]).
-export([downs/1]).

-spec start([node()]) -> pid().
start(Nodes) ->
    spawn(fun() ->
                  [erlang:monitor_node(N, true) || N <- Nodes, N =/= node()],
                  loop([])
          end).

-spec downs(pid()) -> [node()].
downs(Watcher) ->
    Watcher ! {downs, self()},
    receive {Watcher, Downs} -> Downs after 5000 -> error(watcher_stuck) end.

loop(Downs) ->
    receive
        {nodedown, N} -> loop([N | Downs]);
        {downs, From} -> From ! {self(), lists:reverse(Downs)}, loop(Downs)
    end.
