%%% @doc One poll of a cluster's polled source (`{dns, Options}' or
%%% `{callback, #{basename, discover}}'), run in a process of its own by the
%%% shell (caravan_cluster): the listing it answers, or why there is none,
%%% and how long the shell waits for a callback or a dial before giving up.
%%% Watched sources (consul, nomad) are caravan_watch's.
-module(caravan_cluster_source).

-export([discover/2]).
-export([callback_deadline/1]).
-export([dial_deadline/0]).

%% A callback source's call is abandoned after 2 x poll_interval, or this
%% if longer (see callback_deadline/1).
-define(CALLBACK_DEADLINE_MIN_MS, 5000).

%% @doc The nodes a polled source lists now, or why it lists none.
-spec discover(dns | callback, map()) -> {ok, [node()]} | {error, term()}.
discover(dns, Options) ->
    caravan_dns:discover(Options);
discover(callback, #{basename := Base, discover := Fun}) ->
    try Fun() of
        {ok, Found} when is_list(Found) ->
            callback_nodes(Base, Found);
        {error, Reason} ->
            {error, Reason};
        Other ->
            {error, {bad_callback_result, Other}}
    catch Class:Reason ->
            {error, {callback_failed, Class, Reason}}
    end.

%% @doc How long a callback may take: a DNS lookup has the C program's
%% deadline, a user's function none; one that never returns would silence
%% its source for good, with nothing in status() to say so.
-spec callback_deadline(pos_integer()) -> pos_integer().
callback_deadline(Poll) ->
    max(2 * Poll, ?CALLBACK_DEADLINE_MIN_MS).

%% @doc How long a dial may take: twice the kernel's net_setuptime, read as
%% net_kernel:connecttime/0 reads it (seconds, a number, at most 120,
%% default 7). By then net_kernel's own setup has given up; only a connect
%% MFA that hangs is still running.
-spec dial_deadline() -> pos_integer().
dial_deadline() ->
    Setup = case application:get_env(kernel, net_setuptime) of
                {ok, S} when is_number(S), S >= 120 -> 120000;
                {ok, S} when is_number(S), S > 0 -> round(S * 1000);
                _ -> 7000
            end,
    2 * Setup.

%% The nodes a callback's answer names, or an error for the first entry
%% that names none: an answer with junk in it is not a listing (dropping
%% the junk could empty the listing, and prune every member).
-spec callback_nodes(term(), list()) -> {ok, [node()]} | {error, term()}.
callback_nodes(Base, Found) ->
    try {ok, lists:usort(callback_entries(Base, Found))}
    catch throw:{bad_entry, Entry} -> {error, {bad_callback_result, Entry}}
    end.

%% An improper list ([Entry | x]) is an answer that lists nothing: its
%% tail is the bad entry (a comprehension over it raised bad_generator in
%% the poller, which was restarted every 500 ms).
-spec callback_entries(term(), term()) -> [node()].
callback_entries(_Base, []) -> [];
callback_entries(Base, [Entry | Rest]) -> [callback_node(Base, Entry) | callback_entries(Base, Rest)];
callback_entries(_Base, Tail) -> throw({bad_entry, Tail}).

-spec callback_node(term(), term()) -> node().
callback_node(Base, {Host, Port} = Entry) when is_integer(Port), Port >= 1, Port =< 65535,
                                               (is_tuple(Host) orelse is_list(Host)
                                                orelse is_binary(Host)) ->
    %% The naming rule raises on what it cannot name (not UTF-8, an
    %% address tuple that is none, a name longer than an atom can be).
    try caravan_name:node(Base, Port, Host)
    catch error:_ -> throw({bad_entry, Entry})
    end;
callback_node(_Base, Entry) ->
    throw({bad_entry, Entry}).
