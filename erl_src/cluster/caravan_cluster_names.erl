%%% @doc A cluster's budget of node names: how many distinct names its
%%% sources may list within a window (`max_names' in `names_window' ms),
%%% judged on the names' text BEFORE any becomes an atom. Atoms are never
%%% freed, so a lying server that answers new addresses on every poll would
%%% otherwise mint them until the atom table is full and the VM stops.
%%%
%%% An answer whose new names would take the cluster past the budget is
%%% refused whole (`{error, {too_many_names, Text}}'): its source keeps its
%%% last listing, and the error shows in caravan:status() and the log as
%%% any source error does. Names listed again are seen again (their time is
%%% renewed) and cost nothing new.
%%%
%%% The budget lives in an ETS table owned by the cluster's shell
%%% (caravan_cluster) and written by its pollers and watches, which make the
%%% names. Sources of one cluster admit their answers concurrently, so the
%%% cap can be passed by at most the other sources' answers in flight (each
%%% itself bounded by `max_members'). A restarted shell starts a new window.
-module(caravan_cluster_names).

-export([new/1]).
-export([admit/2]).
-export([refused/2]).
-export([describe/1]).

-export_type([guard/0]).

-type guard() :: none | #{tab := ets:tid(), max := pos_integer(), window := pos_integer()}.

%% Defaults. A cluster's sources list at most max_members (10,000 by
%% default) per answer; a rolling deploy that gives every member a new
%% address adds that many names. 100,000 names a day is ten such deploys
%% of the largest default service, while a server that lies on every poll
%% can mint no more than that a day per cluster: about 10% of the VM's
%% default atom table (1,048,576), with a refusal logged every poll from
%% then on, days before the table could fill.
-define(DEFAULT_MAX_NAMES, 100000).
-define(DEFAULT_WINDOW_MS, 86400000).

%% @doc The guard of a cluster with these settings (`max_names',
%% `names_window'); its table belongs to the calling process.
-spec new(#{max_names => pos_integer(), names_window => pos_integer(), _ => _}) -> guard().
new(Settings) ->
    Tab = ets:new(caravan_cluster_names, [set, public, {write_concurrency, true}]),
    true = ets:insert(Tab, [{names_refused, 0}, {answers_refused, 0}]),
    #{tab => Tab,
      max => maps:get(max_names, Settings, ?DEFAULT_MAX_NAMES),
      window => maps:get(names_window, Settings, ?DEFAULT_WINDOW_MS)}.

%% @doc ok when the names (node names as text, `name@host') fit the
%% cluster's budget, recorded as seen now; else the refusal, counted.
-spec admit(guard(), [binary()]) -> ok | {error, {too_many_names, binary()}}.
admit(none, _Names) ->
    ok;
admit(#{tab := Tab, max := Max, window := Window}, Names) ->
    Now = erlang:monotonic_time(millisecond),
    _ = ets:select_delete(Tab, [{{{name, '_'}, '$1'}, [{'<', '$1', Now - Window}], [true]}]),
    New = length([N || N <- Names, not ets:member(Tab, {name, N})]),
    Seen = seen(Tab),
    case Seen + New > Max of
        true ->
            _ = ets:update_counter(Tab, names_refused, 1),
            {error, {too_many_names, unicode:characters_to_binary(
                                       io_lib:format("the answer names ~b node(s) this cluster "
                                                     "has not seen, past its ~b distinct names "
                                                     "in ~b ms (max_names, names_window; ~b "
                                                     "seen): refused, the last listing stands",
                                                     [New, Max, Window, Seen]))}};
        false ->
            true = ets:insert(Tab, [{{name, N}, Now} || N <- Names]),
            ok
    end.

%% @doc Counts an answer refused before naming (too many members, or too
%% large): Reason is the source's error.
-spec refused(guard(), term()) -> ok.
refused(#{tab := Tab}, {too_large, _}) ->
    _ = ets:update_counter(Tab, answers_refused, 1),
    ok;
refused(_Guard, _Reason) ->
    ok.

%% @doc The budget and its counts, for caravan:status().
-spec describe(guard()) -> map().
describe(none) ->
    #{};
describe(#{tab := Tab, max := Max, window := Window}) ->
    #{max_names => Max,
      names_window => Window,
      names_seen => seen(Tab),
      names_refused => ets:lookup_element(Tab, names_refused, 2),
      answers_refused => ets:lookup_element(Tab, answers_refused, 2)}.

-spec seen(ets:tid()) -> non_neg_integer().
seen(Tab) ->
    ets:select_count(Tab, [{{{name, '_'}, '_'}, [], [true]}]).
