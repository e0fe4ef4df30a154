%%% @doc Where running clusters find each other on this node: the pg scope
%%% and group every cluster joins, whoever started it (caravan's supervisor
%%% or libcluster's), so that caravan:status() and the node's leave
%%% (caravan_cluster:leave_node/0, from the application's prep_stop) find
%%% them all. Called from inside a cluster's process.
-module(caravan_cluster_group).

-export([all/0]).
-export([join/0]).
-export([rejoin/1]).
-export([scope_down/0]).

%% The scope is caravan_sup's child (caravan_clusters); caravan_cluster's
%% 'DOWN' clause names it too.
-define(SCOPE, caravan_clusters).
-define(GROUP, clusters).
%% A restarted scope is joined again: tried every REJOIN_MS, REJOIN_TRIES
%% times (its supervisor restarts it at once; longer, caravan is stopping).
-define(REJOIN_MS, 100).
-define(REJOIN_TRIES, 20).

%% @doc Every cluster running on this node, started by caravan or through
%% libcluster (pg scopes are shared between connected nodes: local ones only).
-spec all() -> [pid()].
all() ->
    try pg:get_local_members(?SCOPE, ?GROUP)
    catch error:badarg -> [] % the scope is not running (caravan stopped)
    end.

%% @doc Joins caravan's pg scope, and watches it: the scope restarted by
%% caravan's supervisor starts empty, and a cluster outside it would be
%% missing from caravan:status() and from the departure notices at stop.
-spec join() -> boolean().
join() ->
    try pg:join(?SCOPE, ?GROUP, self()) of
        ok ->
            _ = erlang:monitor(process, ?SCOPE),
            true
    catch
        %% caravan's supervisor is not running (not listed), or the scope
        %% is going down under a rejoin while caravan stops.
        exit:_ -> false
    end.

%% @doc The scope went down: the calling cluster gets `{rejoin_group,
%% Tries}' once it may be back.
-spec scope_down() -> ok.
scope_down() ->
    _ = erlang:send_after(?REJOIN_MS, self(), {rejoin_group, ?REJOIN_TRIES}),
    ok.

%% @doc Joins the scope again once it is back, Tries more times ?REJOIN_MS
%% apart; after that caravan itself is stopping or stopped.
-spec rejoin(non_neg_integer()) -> ok.
rejoin(0) ->
    ok;
rejoin(Tries) ->
    case join() of
        true -> ok;
        false -> _ = erlang:send_after(?REJOIN_MS, self(), {rejoin_group, Tries - 1}), ok
    end.
