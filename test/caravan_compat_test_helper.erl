%%% Runs inside the compat suite's test nodes: a watcher of node events
%%% (net_kernel:monitor_nodes/1), and a disconnect MFA for the libcluster
%%% stand-in that records every disconnect the strategy asks for.
-module(caravan_compat_test_helper).

-export([watch/0]).
-export([downs/1]).
-export([disconnect/1]).
-export([disconnects/0]).

%% @doc A process that records every nodedown this node sees from now on.
-spec watch() -> pid().
watch() ->
    Self = self(),
    Pid = spawn(fun() ->
                        ok = net_kernel:monitor_nodes(true),
                        Self ! {self(), watching},
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

%% @doc libcluster's default disconnect (erlang:disconnect_node/1), recorded.
-spec disconnect(node()) -> boolean() | ignored.
disconnect(Node) ->
    owner() ! {disconnect, Node},
    erlang:disconnect_node(Node).

-spec disconnects() -> [node()].
disconnects() ->
    owner() ! {disconnects, self()},
    receive {?MODULE, Nodes} -> Nodes after 5000 -> error(helper_stuck) end.

owner() ->
    case whereis(?MODULE) of
        undefined ->
            Pid = spawn(fun() -> owner_loop([]) end),
            try register(?MODULE, Pid) of
                true -> Pid
            catch
                error:badarg -> exit(Pid, kill), whereis(?MODULE)
            end;
        Pid ->
            Pid
    end.

owner_loop(Nodes) ->
    receive
        {disconnect, N} -> owner_loop([N | Nodes]);
        {disconnects, From} -> From ! {?MODULE, lists:reverse(Nodes)}, owner_loop(Nodes)
    end.
