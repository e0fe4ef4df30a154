%%% @doc One poll of a cluster's polled source (`{dns, Options}' or
%%% `{callback, #{basename, discover}}'), run in a process of its own by the
%%% shell (caravan_cluster): the listing it answers, or why there is none,
%%% and how long the shell waits for a callback or a dial before giving up.
%%% Watched sources (consul, nomad) are caravan_watch's.
-module(caravan_cluster_source).

-export([discover/2]).
-export([discover/3]).
-export([callback_deadline/1]).
-export([dial_deadline/0]).

%% A callback source's call is abandoned after 2 x poll_interval, or this
%% if longer (see callback_deadline/1).
-define(CALLBACK_DEADLINE_MIN_MS, 5000).

%% @doc The nodes a polled source lists now, or why it lists none.
-spec discover(dns | callback, map()) -> {ok, [node()]} | {error, term()}.
discover(Kind, Options) ->
    discover(Kind, Options, none).

%% @doc discover/2 within the cluster's budget of names
%% (caravan_cluster_names): no atom is made for a refused answer, and
%% refusals are counted there.
-spec discover(dns | callback, map(), caravan_cluster_names:guard()) ->
          {ok, [node()]} | {error, term()}.
discover(Kind, Options, Guard) ->
    Result = listing(Kind, Options, Guard),
    _ = [caravan_cluster_names:refused(Guard, Reason) || {error, Reason} <- [Result]],
    Result.

listing(dns, Options, Guard) ->
    caravan_dns:discover(Options, Guard);
listing(callback, #{basename := Base, discover := Fun} = Options, Guard) ->
    try Fun() of
        {ok, Found} when is_list(Found) ->
            Max = caravan_options:max_members(Options),
            case callback_names(Base, Found) of
                {ok, Names} when length(Names) > Max ->
                    {error, {too_large, unicode:characters_to_binary(
                                          io_lib:format("the callback lists more than ~b "
                                                        "members (max_members)", [Max]))}};
                {ok, Names} ->
                    case caravan_cluster_names:admit(Guard, Names) of
                        ok -> {ok, [binary_to_atom(N, utf8) || N <- Names]};
                        {error, _} = Refused -> Refused
                    end;
                {error, _} = Error ->
                    Error
            end;
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

%% The node names (as text) a callback's answer names, or an error for the
%% first entry that names none: an answer with junk in it is not a listing
%% (dropping the junk could empty the listing, and prune every member). No
%% atom yet: the cluster's budget judges the text first.
-spec callback_names(term(), list()) -> {ok, [binary()]} | {error, term()}.
callback_names(Base, Found) ->
    try {ok, lists:usort(callback_entries(Base, Found))}
    catch throw:{bad_entry, Entry} -> {error, {bad_callback_result, Entry}}
    end.

%% An improper list ([Entry | x]) is an answer that lists nothing: its
%% tail is the bad entry (a comprehension over it raised bad_generator in
%% the poller, which was restarted every 500 ms).
-spec callback_entries(term(), term()) -> [binary()].
callback_entries(_Base, []) -> [];
callback_entries(Base, [Entry | Rest]) -> [callback_name(Base, Entry) | callback_entries(Base, Rest)];
callback_entries(_Base, Tail) -> throw({bad_entry, Tail}).

-spec callback_name(term(), term()) -> binary().
callback_name(Base, {Host, Port} = Entry) when is_integer(Port), Port >= 1, Port =< 65535,
                                               (is_tuple(Host) orelse is_list(Host)
                                                orelse is_binary(Host)) ->
    %% The naming rule raises on what it cannot name (not UTF-8, an
    %% address tuple that is none); a name longer than an atom can be is
    %% refused here, before any atom is made.
    try caravan_name:text(Base, Port, Host) of
        Name ->
            case length(unicode:characters_to_list(Name)) =< 255 of
                true -> Name;
                false -> throw({bad_entry, Entry})
            end
    catch error:_ -> throw({bad_entry, Entry})
    end;
callback_name(_Base, Entry) ->
    throw({bad_entry, Entry}).
