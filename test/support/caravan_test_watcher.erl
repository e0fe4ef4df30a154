%%% Runs inside test nodes: records every nodedown of a set of nodes, or
%%% of every node (start_all/0), so a test can assert that connections
%%% survived or count how often one went down.
-module(caravan_test_watcher).

-export([start/1]).
-export([start_all/0]).
-export([downs/1]).

-spec start([node()]) -> pid().
start(Nodes) ->
    spawn(fun() ->
                  [erlang:monitor_node(N, true) || N <- Nodes, N =/= node()],
                  loop([])
          end).

%% @doc Records every nodedown this node sees from now on (monitor_nodes keeps
%% reporting a node that comes back and goes again, unlike monitor_node);
%% returns once it is watching.
-spec start_all() -> pid().
start_all() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        ok = net_kernel:monitor_nodes(true),
                        Parent ! {self(), watching},
                        loop([])
                end),
    receive {Pid, watching} -> Pid after 5000 -> error(watcher_stuck) end.

-spec downs(pid()) -> [node()].
downs(Watcher) ->
    Watcher ! {downs, self()},
    receive {Watcher, Downs} -> Downs after 5000 -> error(watcher_stuck) end.

loop(Downs) ->
    receive
        {nodedown, N} -> loop([N | Downs]);
        {nodeup, _} -> loop(Downs);
        {downs, From} -> From ! {self(), lists:reverse(Downs)}, loop(Downs)
    end.
