{
  "variables": {
    # Warnings are errors in CI's builds (NATIVE_TLS_LISTENER_WERROR=1), never in the build a
    # user's install runs: a newer compiler's new warning must not break an install.
    "werror%": "<!(node -p \"process.env.NATIVE_TLS_LISTENER_WERROR === '1' ? 'true' : 'false'\")"
  },
  "targets": [
    {
      "target_name": "native_acceptor",
      "sources": [
        "native/module.cc",
        "native/accept_errors.cc",
        "native/listen_socket.cc",
        "native/acceptor.cc",
        "native/resolver.cc"
      ],
      # node-addon-api's own way to enable C++ exceptions (NAPI_CPP_EXCEPTIONS, no
      # -fno-exceptions) with NODE_ADDON_API_CPP_EXCEPTIONS_ALL: a std::exception thrown in a
      # callback becomes a JS error instead of std::terminate.
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"
      ],
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      # Only the Node-API entry points (marked visible by node_api.h) are exported.
      "cflags": ["-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra"]
      },
      "conditions": [
        ["werror == 'true'", {
          "cflags_cc": ["-Werror"],
          "xcode_settings": { "GCC_TREAT_WARNINGS_AS_ERRORS": "YES" }
        }]
      ]
    }
  ]
}
