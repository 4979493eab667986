{
  "variables": {
    # Warnings are errors in CI's builds (NATIVE_TLS_LISTENER_WERROR=1), never in the build a
    # user's install runs: a newer compiler's new warning must not break an install.
    "werror%": "<!(node -p \"process.env.NATIVE_TLS_LISTENER_WERROR === '1' ? 'true' : 'false'\")",
    # NTL_FORCE_PORTABLE=1 takes native/platform.h's portable paths on Linux too (what macOS
    # runs), so that CI can test them: never set for a user's install.
    "portable%": "<!(node -p \"process.env.NTL_FORCE_PORTABLE === '1' ? 'true' : 'false'\")"
  },
  "targets": [
    {
      "target_name": "native_acceptor",
      "sources": [
        "native/module.cc",
        "native/addon.cc",
        "native/accept_errors.cc",
        "native/accept_books.cc",
        "native/accept_queue.cc",
        "native/listen_socket.cc",
        "native/js_values.cc",
        "native/acceptor.cc",
        "native/batch_delivery.cc",
        "native/accept_driver.cc",
        "native/peer_words.cc",
        "native/admission.cc",
        "native/load_shedding.cc",
        "native/arguments.cc",
        "native/resolver.cc",
        "native/notify_socket.cc",
        "native/descriptor_passing.cc",
        "native/batch_slots.cc",
        "native/address_counts.cc",
        "native/address_key.cc",
        "native/dispatch_state.cc",
        "native/accept_thread.cc",
        "native/dispatcher_registry.cc",
        "native/dispatcher.cc",
        "native/worker_queue.cc",
        "native/hello_parse.cc",
        "native/proxy_frame.cc",
        "native/peek_wait.cc",
        "native/peek_outcome.cc",
        "native/hello_peek.cc",
        "native/wait_set.cc",
        "native/hello_take.cc",
        "native/glibc_compat.cc",
        "native/platform.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # C++ exceptions as node-addon-api's node_addon_api_except_all target sets them up
      # (except.gypi plus NODE_ADDON_API_CPP_EXCEPTIONS_ALL): a std::exception thrown in a
      # callback becomes a JS error instead of std::terminate. The defines, not the gyp
      # dependency: with node-addon-api hoisted beside this package (every user's install),
      # gyp's make generator writes that dependency's makefiles outside build/, into the
      # installed package (nodejs/gyp-next#325).
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      # Only the Node-API entry points (marked visible by node_api.h) are exported.
      "cflags": ["-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra"]
      },
      "conditions": [
        ["portable == 'true'", { "defines": ["NTL_FORCE_PORTABLE"] }],
        ["werror == 'true'", {
          "cflags_cc": ["-Werror"],
          "xcode_settings": { "GCC_TREAT_WARNINGS_AS_ERRORS": "YES" }
        }]
      ]
    }
  ]
}
