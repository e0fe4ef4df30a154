%%% @doc Caravan 1.0.1's `Caravan.Epmd': the port a node name carries.
%%%
%%% `dist_port/1' answers as 1.0.1 did, for atoms, charlists and binaries:
%%% the decimal digits ending the name part (before `@'), else the default
%%% port (4370, or caravan's `default_port' setting, so that it agrees with
%%% the port caravan_epmd listens on). Pure: it needs no process.
-module('Elixir.Caravan.Epmd').

-export([dist_port/1]).

%% @doc The distribution port a node name carries: the decimal digits that
%% end the part before `@', or the default port when there are none.
%%
%% Examples:
%%
%% ```
%% iex> Caravan.Epmd.dist_port(:"app-name3434@example.net")
%% 3434
%%
%% iex> Caravan.Epmd.dist_port(:"app-name-4834@example.net")
%% 4834
%% '''
-spec dist_port(atom() | string() | binary()) -> non_neg_integer().
dist_port(Node) when is_atom(Node) ->
    dist_port(atom_to_binary(Node, utf8));
dist_port(Node) when is_list(Node) ->
    dist_port(unicode:characters_to_binary(Node));
dist_port(Node) when is_binary(Node) ->
    [Name | _] = binary:split(Node, <<"@">>),
    Digits = trailing_digits(Name),
    case Digits of
        <<>> -> caravan_config:default_port();
        _ -> binary_to_integer(Digits)
    end.

trailing_digits(Name) ->
    trailing_digits(Name, byte_size(Name)).

trailing_digits(Name, N) when N > 0 ->
    case binary:at(Name, N - 1) of
        C when C >= $0, C =< $9 -> trailing_digits(Name, N - 1);
        _ -> binary:part(Name, N, byte_size(Name) - N)
    end;
trailing_digits(Name, 0) ->
    Name.
