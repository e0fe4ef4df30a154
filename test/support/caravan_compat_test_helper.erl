%%% Runs inside the compat suite's test nodes: a disconnect MFA for the
%%% libcluster stand-in that records every disconnect the strategy asks for.
-module(caravan_compat_test_helper).

-export([disconnect/1]).
-export([disconnects/0]).


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
