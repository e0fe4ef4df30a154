%%% @doc The effects of leaving, and of making another node leave, as
%%% docs/global.md explains them: the departure notice and its
%%% acknowledgements, dropping this node's connections in the scope the
%%% core chose (caravan_cluster_core:leave_scope/2), the last-resort prune
%%% that asks a node to leave before disconnecting it, and the facts about
%%% global those choices rest on. The shell (caravan_cluster) and the
%%% application's prep_stop (through caravan_cluster:leave_node/0) run them.
-module(caravan_cluster_leave).

-export([drop_connections/2]).
-export([drop/3]).
-export([facts/1]).
-export([has_global_disconnect/0]).
-export([prevents_overlapping_partitions/0]).
-export([announce/2]).
-export([prune/4]).

-type mfa_args() :: {module(), atom(), [term()]}.

%% How long a leaving node waits for members to acknowledge its departure
%% notice (they answer in microseconds; a member that does not, e.g. an
%% older caravan, only costs this once).
-define(DEPARTURE_ACK_MS, 500).
%% How long a pruned node gets to leave when asked (global:disconnect/0 on
%% it takes a round trip and a few milliseconds) before it is disconnected
%% from here.
-define(REMOTE_LEAVE_MS, 1000).

%% @doc Drops this node's connections for a leave of Members and returns
%% the nodes dropped. `global_disconnect': whether global:disconnect/0
%% exists (false on OTP 25.0); `pop': whether
%% prevent_overlapping_partitions and connect_all are both on.
-spec drop_connections([node()], #{global_disconnect := boolean(), pop := boolean(),
                                   disconnect := mfa_args()}) -> [node()].
drop_connections(Members, #{global_disconnect := Global, pop := Pop,
                            disconnect := Mfa}) ->
    Facts = #{global_disconnect => Global, pop => Pop,
              default_disconnect => Mfa =:= {erlang, disconnect_node, []}},
    drop(Members, caravan_cluster_core:leave_scope(Members, Facts), Mfa).

%% @doc Drops Members' connections in Scope: global:disconnect/0 (the
%% members and every other visible node global knows), or each member
%% through the disconnect MFA. Returns the nodes dropped.
-spec drop([node()], caravan_cluster_core:leave_scope(), mfa_args()) -> [node()].
drop(_Members, global, _Mfa) ->
    global:disconnect();
drop(Members, members, {M, F, A}) ->
    %% No cascade to fear (pop off), OTP 25.0, or libcluster's own MFA.
    [N || N <- Members, apply(M, F, A ++ [N]) =:= true].

%% @doc The facts a leave's scope rests on, read now, for a cluster whose
%% disconnect MFA is Mfa.
-spec facts(mfa_args()) -> caravan_cluster_core:leave_facts().
facts(Mfa) ->
    #{global_disconnect => has_global_disconnect(),
      pop => prevents_overlapping_partitions(),
      default_disconnect => Mfa =:= {erlang, disconnect_node, []}}.

%% @doc Whether global:disconnect/0 exists (OTP 25.1 and later).
-spec has_global_disconnect() -> boolean().
has_global_disconnect() ->
    _ = code:ensure_loaded(global),
    erlang:function_exported(global, disconnect, 0).

%% @doc Whether global turns a lost connection into more (docs/global.md).
-spec prevents_overlapping_partitions() -> boolean().
prevents_overlapping_partitions() ->
    application:get_env(kernel, prevent_overlapping_partitions, true) =:= true andalso
        application:get_env(kernel, connect_all, true) =:= true andalso
        init:get_argument(connect_all) =/= {ok, [["false"]]}.

%% @doc Sends the departure notice to Nodes' clusters named Name and waits
%% (bounded) for them to acknowledge; returns how many did.
-spec announce(atom(), [node()]) -> non_neg_integer().
announce(Name, Nodes) ->
    Ref = make_ref(),
    Notice = {caravan_cluster_departing, self(), Ref},
    Sent = [N || N <- Nodes, N =/= node(),
                 erlang:send({caravan_cluster:process_name(Name), N}, Notice,
                             [noconnect]) =:= ok],
    collect_acks(Ref, length(Sent), erlang:monotonic_time(millisecond) + ?DEPARTURE_ACK_MS).

-spec collect_acks(reference(), non_neg_integer(), integer()) -> non_neg_integer().
collect_acks(_Ref, 0, _Deadline) ->
    0;
collect_acks(Ref, Pending, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {caravan_cluster_departure_seen, Ref} -> 1 + collect_acks(Ref, Pending - 1, Deadline)
    after Left -> 0
    end.

%% @doc The last-resort prune of Node (docs/global.md). Where global
%% would turn this node's disconnect into a cascade, Node is asked to leave
%% instead: global:disconnect/0 run on it drops it from every node in one
%% step, without `lost_connection' messages, so the staying members keep
%% each other. It is disconnected from here, which may cascade, when it is
%% still connected after ?REMOTE_LEAVE_MS (an OTP 25.0 node, a node too
%% busy to answer), and when it was asked less than 2 x Grace ago
%% (Asked says when each node was): something brings it back (a cluster of
%% its own meshes it with a node connected to ours, and connect_all with
%% us), and asking again would only go round that loop; the cascade's
%% partition ends it. A libcluster topology's own disconnect MFA is called
%% as it is: theirs to decide. Returns what the disconnect answered and
%% Asked brought up to date.
-spec prune(node(), mfa_args(), #{node() => integer()}, non_neg_integer()) ->
          {term(), #{node() => integer()}}.
prune(Node, {erlang, disconnect_node, []} = Mfa, Asked, Grace) ->
    Now = erlang:monotonic_time(millisecond),
    Recently = case maps:find(Node, Asked) of
                   {ok, T} -> Now - T < 2 * Grace;
                   error -> false
               end,
    Asked1 = maps:filter(fun(_, T) -> Now - T < 2 * Grace end, Asked),
    case prevents_overlapping_partitions() andalso not Recently of
        true ->
            ok = ask_to_leave(Node),
            case wait_gone(Node, Now + ?REMOTE_LEAVE_MS) of
                true -> {true, Asked1#{Node => Now}};
                false -> {prune_here(Node, Mfa), Asked1#{Node => Now}}
            end;
        false ->
            {prune_here(Node, Mfa), Asked1}
    end;
prune(Node, Mfa, Asked, _Grace) ->
    {prune_here(Node, Mfa), Asked}.

%% global:disconnect/0 run on Node, through its rpc server (rex) as
%% rpc:cast/4 asked older nodes to (the `{cast, M, F, A, GroupLeader}'
%% cast every OTP release's rex still serves), sent with `noconnect':
%% erpc:cast/4 would connect again to a node that has just left, when
%% another member asked it first, and global would mesh it with everyone
%% once more.
-spec ask_to_leave(node()) -> ok.
ask_to_leave(Node) ->
    _ = erlang:send({rex, Node}, {'$gen_cast', {cast, global, disconnect, [], user}},
                    [noconnect]),
    ok.

-spec prune_here(node(), mfa_args()) -> term().
prune_here(Node, {M, F, A}) ->
    apply(M, F, A ++ [Node]).

-spec wait_gone(node(), integer()) -> boolean().
wait_gone(Node, Deadline) ->
    case lists:member(Node, nodes(connected)) of
        false ->
            true;
        true ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> false;
                false -> timer:sleep(10), wait_gone(Node, Deadline)
            end
    end.
